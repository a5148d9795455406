//! An HTTP/2 connection's socket whose writes wait for the connection's next pass on
//! the wake-up grid (`timer::WakeGrid`), so that one write carries everything the
//! connection has to send between two grid points.
//!
//! Why: h2 flushes at the end of every poll of its connection, and a connection is
//! polled far more often than the grid: after each frame queued (h2 wakes its task),
//! for each request read, for each response head sent by a request's task. At 5,000
//! streams that made about 37,000 writes a second of six tokens each, where the grid
//! allows 10,000; each write to a loopback socket costs the mock 5–10 µs of kernel time,
//! most of it waking the reader. tokio's `BufWriter` cannot do this: it writes on every
//! flush, and h2 flushes whenever it has nothing more to encode.
//!
//! It also tells when the socket is full ([`WriteGate::is_blocked`]): the connection then
//! renders nothing new, where h2 would have buffered every frame due until the client
//! read them.
//!
//! Owns holding and sending a connection's bytes; when the gate opens is the
//! connection's task's call ([`WriteGate::set_open`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most a connection holds back: past it, a write sends what is held first, so a
/// connection's held bytes are bounded whatever the gate says.
const MOST_HELD: usize = 64 * 1024;

/// Whether a connection's socket may send now, and whether it is holding bytes back:
/// shared by the connection's task, which opens it on its grid passes, and the socket.
pub(super) struct WriteGate {
    open: AtomicBool,
    holding: AtomicBool,
    /// The socket's last send found its buffer full: the client is not reading as fast
    /// as the connection writes.
    blocked: AtomicBool,
    /// DATA frames' payload bytes h2 has written to the socket: what the connection handed
    /// h2 and this has not reached are waiting in h2 for the client's flow-control window.
    data_written: AtomicU64,
}

impl WriteGate {
    /// A gate open until the connection's task first says otherwise (the handshake's
    /// settings go out at once).
    pub fn new() -> Arc<WriteGate> {
        Arc::new(WriteGate {
            open: AtomicBool::new(true),
            holding: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            data_written: AtomicU64::new(0),
        })
    }

    /// DATA payload bytes written so far.
    pub fn data_written(&self) -> u64 {
        self.data_written.load(Ordering::Relaxed)
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Relaxed);
    }

    /// Whether the socket is waiting for its client to read what it sent.
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Whether bytes were held back since the last call: the task then has to open the
    /// gate at its next grid point even if no stream falls due by then.
    pub fn take_holding(&self) -> bool {
        self.holding.swap(false, Ordering::Relaxed)
    }
}

/// A socket whose flushes send only while its [`WriteGate`] is open; written bytes wait in a
/// buffer until then (at most [`MOST_HELD`]).
pub(super) struct GatedSocket<IO> {
    io: IO,
    held: Vec<u8>,
    /// How much of `held` is already sent.
    sent: usize,
    gate: Arc<WriteGate>,
    frames: FrameCounter,
}

impl<IO: AsyncWrite + Unpin> GatedSocket<IO> {
    pub fn new(io: IO, gate: Arc<WriteGate>) -> GatedSocket<IO> {
        GatedSocket {
            io,
            held: Vec::new(),
            sent: 0,
            gate,
            frames: FrameCounter::default(),
        }
    }

    /// h2 has handed over `bytes`: the DATA payload in them is out of h2's buffers.
    fn taken(&mut self, bytes: &[u8]) {
        let data = self.frames.count(bytes);
        self.gate.data_written.fetch_add(data, Ordering::Relaxed);
    }

    /// Sends everything held.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let written = Pin::new(&mut self.io).poll_write(cx, &self.held[self.sent..]);
            if written.is_pending() {
                self.gate.blocked.store(true, Ordering::Relaxed);
            }
            let n = ready!(written)?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        self.gate.blocked.store(false, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }

    /// Makes room for `len` more bytes: sends what is held once it would pass the bound.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if self.held.len() + len > MOST_HELD && !self.held.is_empty() {
            ready!(self.poll_send(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for GatedSocket<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.is_empty() && this.gate.open.load(Ordering::Relaxed) {
            // Nothing to keep in order behind: straight to the socket, not copied.
            let written = Pin::new(&mut this.io).poll_write(cx, buf);
            this.gate
                .blocked
                .store(written.is_pending(), Ordering::Relaxed);
            if let Poll::Ready(Ok(n)) = written {
                this.taken(&buf[..n]);
            }
            return written;
        }
        ready!(this.poll_room(cx, buf.len()))?;
        this.held.extend_from_slice(buf);
        this.taken(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// No: h2 then copies data frames of up to 1 KiB into its buffer instead of 256
    /// bytes, and each frame past that makes it flush (a send, with the gate open). A
    /// stream's first and last frames are 400–600 bytes, one of each per request. (So
    /// the default `poll_write_vectored`, a slice at a time through `poll_write`, is all
    /// a vectored write gets.)
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.gate.open.load(Ordering::Relaxed) {
            if !this.held.is_empty() {
                this.gate.holding.store(true, Ordering::Relaxed);
            }
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for GatedSocket<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

/// Counts the DATA frames' payload bytes in the HTTP/2 frames written, wherever the
/// writes cut them: each frame is a 9-byte header (its first three bytes the payload's
/// length, the fourth its type, 0 for DATA; RFC 9113 §4.1) and its payload. h2 pads no
/// frame, so a DATA frame's payload is the response's bytes.
#[derive(Default)]
struct FrameCounter {
    header: [u8; 9],
    /// Bytes of the next header seen so far.
    header_seen: usize,
    /// Bytes of the current frame's payload still to come.
    payload_left: usize,
    data: bool,
}

impl FrameCounter {
    /// The DATA payload bytes among `bytes`.
    fn count(&mut self, mut bytes: &[u8]) -> u64 {
        let mut data = 0;
        while !bytes.is_empty() {
            if self.payload_left == 0 {
                let n = (9 - self.header_seen).min(bytes.len());
                self.header[self.header_seen..self.header_seen + n].copy_from_slice(&bytes[..n]);
                self.header_seen += n;
                bytes = &bytes[n..];
                if self.header_seen == 9 {
                    let [a, b, c, kind, ..] = self.header;
                    self.payload_left = usize::from_be_bytes([0, 0, 0, 0, 0, a, b, c]);
                    self.data = kind == 0;
                    self.header_seen = 0;
                }
            } else {
                let n = self.payload_left.min(bytes.len());
                if self.data {
                    data += n as u64;
                }
                self.payload_left -= n;
                bytes = &bytes[n..];
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    #[test]
    fn data_payload_is_counted_however_the_writes_cut_the_frames() {
        let frame = |kind: u8, payload: &[u8]| {
            let len = payload.len().to_be_bytes();
            let mut frame = vec![len[5], len[6], len[7], kind, 0, 0, 0, 0, 1];
            frame.extend_from_slice(payload);
            frame
        };
        let mut bytes = frame(4, &[0; 12]); // SETTINGS
        bytes.extend(frame(1, &[7; 30])); // HEADERS
        bytes.extend(frame(0, &[1; 300])); // DATA
        bytes.extend(frame(0, &[])); // an empty DATA, ending a stream
        bytes.extend(frame(0, &[2; 5]));
        for cut in [1, 2, 9, 10, 64, bytes.len()] {
            let mut counter = FrameCounter::default();
            let counted: u64 = bytes.chunks(cut).map(|c| counter.count(c)).sum();
            assert_eq!(counted, 305, "cut every {cut} bytes");
        }
    }

    /// A socket behind a closed gate, the other end of its pipe, and the gate.
    fn behind_a_closed_gate() -> (GatedSocket<DuplexStream>, DuplexStream, Arc<WriteGate>) {
        let (near, far) = tokio::io::duplex(1 << 20);
        let gate = WriteGate::new();
        gate.set_open(false);
        (GatedSocket::new(near, gate.clone()), far, gate)
    }

    #[tokio::test]
    async fn a_closed_gate_holds_writes_until_it_opens() {
        let (mut socket, mut far, gate) = behind_a_closed_gate();
        socket.write_all(b"head").await.unwrap();
        socket.flush().await.unwrap();
        assert!(gate.take_holding());
        let mut buf = [0u8; 16];
        let nothing =
            tokio::time::timeout(std::time::Duration::from_millis(20), far.read(&mut buf));
        assert!(
            nothing.await.is_err(),
            "nothing is sent while the gate is closed"
        );
        gate.set_open(true);
        socket.flush().await.unwrap();
        assert!(!gate.take_holding());
        let n = far.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"head");
    }

    #[tokio::test]
    async fn held_bytes_are_bounded() {
        let (mut socket, mut far, _gate) = behind_a_closed_gate();
        let chunk = vec![7u8; MOST_HELD / 4 + 1];
        for _ in 0..4 {
            socket.write_all(&chunk).await.unwrap();
        }
        // The fourth write passed the bound: the three before it went out.
        assert_eq!(socket.held.len(), chunk.len());
        let mut received = vec![0u8; 3 * chunk.len()];
        far.read_exact(&mut received).await.unwrap();
        // Shutting down sends the rest, gate or not.
        socket.shutdown().await.unwrap();
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), chunk.len());
    }
}
