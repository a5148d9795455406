//! The floor under any mock: what one small TCP send on loopback costs this machine.
//!
//! Each streamed token is one socket write (an SSE frame of about 150 bytes). On loopback
//! the kernel also delivers the segment to the receiving socket in the sender's context,
//! so the sender's core pays for both ends. This sends such frames round-robin over
//! 1,000 connections from one thread pinned to core 0, with a reader on core 1, and
//! reports the sender's CPU per send: the least one token can cost the mock, whatever
//! its user-space code does, and so how many 20 ms streams one core could carry at best.
//!
//! Run: `cargo bench --bench loopback_floor` (Linux; wants 2 cores).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 1_000;
const ROUNDS: usize = 200;
const FRAME: &[u8] = &[b'x'; 150];

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut senders = Vec::with_capacity(CONNECTIONS);
    let mut receivers = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        senders.push(stream);
        receivers.push(listener.accept()?.0);
    }
    let reader = std::thread::spawn(move || read_all(receivers));
    pin_to_core(0);
    let (cpu_before, wall) = (thread_cpu(), Instant::now());
    for _ in 0..ROUNDS {
        for stream in &mut senders {
            stream.write_all(FRAME)?;
        }
    }
    let (user, sys) = thread_cpu() - cpu_before;
    let wall = wall.elapsed();
    drop(senders);
    let received = reader.join().expect("the reader thread does not panic")?;
    report(user, sys, wall, received);
    Ok(())
}

/// Reads every connection to its end on core 1 (a current-thread runtime, one task per
/// connection, as a client would).
fn read_all(receivers: Vec<TcpStream>) -> std::io::Result<usize> {
    pin_to_core(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let mut readers = tokio::task::JoinSet::new();
        for stream in receivers {
            stream.set_nonblocking(true)?;
            let mut stream = tokio::net::TcpStream::from_std(stream)?;
            readers.spawn(async move {
                let mut sink = tokio::io::sink();
                tokio::io::copy(&mut stream, &mut sink).await
            });
        }
        let mut total = 0;
        while let Some(read) = readers.join_next().await {
            total += read.map_err(std::io::Error::other)?? as usize;
        }
        Ok(total)
    })
}

fn report(user: Duration, sys: Duration, wall: Duration, received: usize) {
    let sends = (CONNECTIONS * ROUNDS) as f64;
    let per_send = |d: Duration| d.as_secs_f64() * 1e6 / sends;
    let total = per_send(user) + per_send(sys);
    println!(
        "{} sends of {} bytes over {CONNECTIONS} loopback connections in {:.2} s ({} bytes received)",
        sends,
        FRAME.len(),
        wall.as_secs_f64(),
        received
    );
    println!(
        "sender CPU per send: user {:.2} µs, system {:.2} µs, total {total:.2} µs",
        per_send(user),
        per_send(sys)
    );
    let per_core = 1e6 / total;
    println!(
        "one core: at most {:.0} sends/s, i.e. {:.0} streams at a 20 ms inter-token latency",
        per_core,
        per_core * 0.020
    );
}

fn pin_to_core(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::cpu_set_t>();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            eprintln!("note: cannot pin to core {core}; figures include sharing a core");
        }
    }
}

/// User and system CPU time of the calling thread.
fn thread_cpu() -> CpuTime {
    // SAFETY: getrusage writes a whole rusage into the zeroed value on success.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    CpuTime(time(usage.ru_utime), time(usage.ru_stime))
}

#[derive(Clone, Copy)]
struct CpuTime(Duration, Duration);

impl std::ops::Sub for CpuTime {
    type Output = (Duration, Duration);
    fn sub(self, earlier: CpuTime) -> (Duration, Duration) {
        (self.0 - earlier.0, self.1 - earlier.1)
    }
}
