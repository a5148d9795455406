//! hyper over tokio-uring sockets: an adapter from io_uring's completion model (hand a
//! buffer to the kernel, get it back filled) to tokio's readiness-style `AsyncRead` /
//! `AsyncWrite` (which rustls and, through `TokioIo`, hyper read and write), and a dial
//! service that opens connections (TCP, TLS, HTTP/1.1 or HTTP/2) on the runtime's own
//! thread.
//!
//! tokio-uring sockets are `!Send` and their connections must be driven by local tasks,
//! while the strategies spawn `Send` tasks with `tokio::spawn`. A request task therefore
//! asks the dial service (a local task) for a connection and gets back hyper's
//! `SendRequest`, which is `Send`; the connection itself stays on the local task set,
//! and so do the tasks HTTP/2 spawns for it (see [`LocalTasks`]).

use super::hyper_client::{Handshake, Sender};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio_uring::net::TcpStream;

/// Size of each read handed to the kernel.
const READ_BUFFER: usize = 16 * 1024;

struct DialJob {
    addr: SocketAddr,
    handshake: Arc<Handshake>,
    reply: oneshot::Sender<io::Result<Sender>>,
}

thread_local! {
    /// The dial service of the tokio-uring runtime on this thread, if one runs here.
    static DIAL_SERVICE: RefCell<Option<mpsc::UnboundedSender<DialJob>>> =
        const { RefCell::new(None) };
}

/// Starts the dial service. Call from the future a tokio-uring runtime is running, so
/// that every task of that runtime (all on this thread) can dial.
pub fn serve_dials() {
    let (jobs, mut queue) = mpsc::unbounded_channel::<DialJob>();
    DIAL_SERVICE.with(|service| *service.borrow_mut() = Some(jobs));
    tokio_uring::spawn(async move {
        while let Some(job) = queue.recv().await {
            tokio_uring::spawn(async move {
                let _ = job.reply.send(connect(job.addr, &job.handshake).await);
            });
        }
    });
}

/// Opens a connection to `addr` over io_uring; only on a tokio-uring runtime's thread.
pub async fn dial(addr: SocketAddr, handshake: Arc<Handshake>) -> io::Result<Sender> {
    let service = DIAL_SERVICE.with(|service| service.borrow().clone());
    let service =
        service.ok_or_else(|| io::Error::other("io_uring sockets need the tokio-uring runtime"))?;
    let (reply, answer) = oneshot::channel();
    let stopped = || io::Error::other("the io_uring dial service stopped");
    service
        .send(DialJob {
            addr,
            handshake,
            reply,
        })
        .map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

async fn connect(addr: SocketAddr, handshake: &Handshake) -> io::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = UringIo::new(stream);
    match &handshake.tls {
        None => start(io, handshake.http2).await,
        Some(tls) => {
            let (io, http2) = tls.connect(io).await?;
            start(io, http2).await
        }
    }
}

/// Starts HTTP/1.1 or HTTP/2 over a connected stream, its tasks on this thread.
async fn start<IO>(io: IO, http2: bool) -> io::Result<Sender>
where
    IO: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let io = TokioIo::new(io);
    if http2 {
        let (sender, connection) = http2::handshake(LocalTasks, io)
            .await
            .map_err(io::Error::other)?;
        tokio_uring::spawn(connection);
        Ok(Sender::Http2(sender))
    } else {
        let (sender, connection) = http1::handshake(io).await.map_err(io::Error::other)?;
        tokio_uring::spawn(connection);
        Ok(Sender::Http1(sender))
    }
}

/// Runs the tasks hyper's HTTP/2 connection spawns (the connection's driver, one per
/// request body) as local tasks: they own the `!Send` socket, so tokio's `spawn` (and
/// hyper-util's `TokioExecutor`) would not take them. hyper spawns them from the dial
/// service's task and from the connection's, both on the local task set.
#[derive(Clone, Copy)]
struct LocalTasks;

impl<F> hyper::rt::Executor<F> for LocalTasks
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio_uring::spawn(future);
    }
}

type Op<T> = Pin<Box<dyn Future<Output = T>>>;

enum ReadState {
    /// No read in flight; the buffer waits for the next one.
    Idle(Vec<u8>),
    Reading(Op<tokio_uring::BufResult<usize, Vec<u8>>>),
    /// A completed read, handed to hyper from `.1` on.
    Filled(Vec<u8>, usize),
}

/// A tokio-uring `TcpStream` as tokio's `AsyncRead` + `AsyncWrite`. A write copies hyper's bytes
/// into an owned buffer and reports them written at once; the next write, flush or
/// shutdown waits for the kernel to finish it, and reports its error if it failed.
pub struct UringIo {
    stream: Rc<TcpStream>,
    read: ReadState,
    write: Option<Op<io::Result<Vec<u8>>>>,
    /// The last finished write's buffer, reused.
    spare: Vec<u8>,
}

impl UringIo {
    fn new(stream: TcpStream) -> UringIo {
        UringIo {
            stream: Rc::new(stream),
            read: ReadState::Idle(Vec::with_capacity(READ_BUFFER)),
            write: None,
            spare: Vec::new(),
        }
    }

    /// Waits for the write in flight, if any.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(op) = &mut self.write {
            let done = ready!(op.as_mut().poll(cx));
            self.write = None;
            self.spare = done?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for UringIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.read {
                ReadState::Filled(buf, from) => {
                    let n = (buf.len() - *from).min(out.remaining());
                    out.put_slice(&buf[*from..*from + n]);
                    *from += n;
                    if *from == buf.len() {
                        this.read = ReadState::Idle(std::mem::take(buf));
                    }
                    return Poll::Ready(Ok(()));
                }
                ReadState::Idle(buf) => {
                    let mut buf = std::mem::take(buf);
                    buf.clear();
                    let stream = this.stream.clone();
                    this.read = ReadState::Reading(Box::pin(async move { stream.read(buf).await }));
                }
                ReadState::Reading(op) => {
                    let (result, buf) = ready!(op.as_mut().poll(cx));
                    match result {
                        Ok(n) if n > 0 => this.read = ReadState::Filled(buf, 0),
                        // End of stream: nothing put in `out` tells hyper so.
                        Ok(_) => {
                            this.read = ReadState::Idle(buf);
                            return Poll::Ready(Ok(()));
                        }
                        Err(e) => {
                            this.read = ReadState::Idle(buf);
                            return Poll::Ready(Err(e));
                        }
                    }
                }
            }
        }
    }
}

impl AsyncWrite for UringIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_written(cx))?;
        let mut buf = std::mem::take(&mut this.spare);
        buf.clear();
        buf.extend_from_slice(data);
        let stream = this.stream.clone();
        this.write = Some(Box::pin(async move {
            let (result, buf) = stream.write_all(buf).await;
            result.map(|()| buf)
        }));
        // Submit it now; its outcome is read by the next call.
        if let Poll::Ready(Err(e)) = this.poll_written(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_written(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_written(cx))?;
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}
