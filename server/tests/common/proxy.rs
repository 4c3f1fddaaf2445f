//! A TCP proxy on loopback between devices and a server process that forwards bytes and closes
//! both sides once a planned number of bytes has passed (moved here from `faults.rs` so that
//! `blobs.rs` cuts transfers the same way). It counts the bytes it forwards in each direction.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes through the proxy in each direction, and the planned cuts (absolute offsets in each
/// direction's byte stream, oldest first).
#[derive(Default)]
pub struct Traffic {
    down: u64,
    up: u64,
    down_cuts: VecDeque<u64>,
    up_cuts: VecDeque<u64>,
    cuts: usize,
}

impl Traffic {
    /// How many of `n` bytes may pass, and whether the connection is cut after them.
    fn pass(&mut self, upstream: bool, n: usize) -> (usize, bool) {
        let (total, plan) = if upstream {
            (&mut self.up, &mut self.up_cuts)
        } else {
            (&mut self.down, &mut self.down_cuts)
        };
        let n = n as u64;
        let (allowed, cut) = match plan.front() {
            Some(&at) if *total + n >= at => {
                plan.pop_front();
                (at.saturating_sub(*total), true)
            }
            _ => (n, false),
        };
        *total += allowed;
        if cut {
            self.cuts += 1;
        }
        (allowed as usize, cut)
    }
}

/// A TCP proxy on 127.0.0.1 in front of the server. Devices use its URL, so the server behind it
/// can be restarted on another port without the devices noticing anything but dropped links.
pub struct Proxy {
    pub url: String,
    upstream: Arc<Mutex<SocketAddr>>,
    traffic: Arc<Mutex<Traffic>>,
    accept: tokio::task::JoinHandle<()>,
}

pub fn socket_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a server URL http://ip:port")
}

impl Proxy {
    pub async fn start(server_url: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = Arc::new(Mutex::new(socket_of(server_url)));
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let (up, tr) = (Arc::clone(&upstream), Arc::clone(&traffic));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = *up.lock().unwrap();
                tokio::spawn(relay(client, target, Arc::clone(&tr)));
            }
        });
        Proxy {
            url,
            upstream,
            traffic,
            accept,
        }
    }

    /// Points new connections at another server process.
    pub fn set_upstream(&self, server_url: &str) {
        *self.upstream.lock().unwrap() = socket_of(server_url);
    }

    /// Plans cuts `gaps` bytes apart, counted from now, in each direction.
    pub fn plan_cuts(&self, down_gaps: &[u64], up_gaps: &[u64]) {
        let mut t = self.traffic.lock().unwrap();
        let (mut at, mut planned) = (t.down, VecDeque::new());
        for gap in down_gaps {
            at += gap;
            planned.push_back(at);
        }
        t.down_cuts = planned;
        let (mut at, mut planned) = (t.up, VecDeque::new());
        for gap in up_gaps {
            at += gap;
            planned.push_back(at);
        }
        t.up_cuts = planned;
    }

    /// Bytes forwarded from the server to devices so far.
    pub fn down(&self) -> u64 {
        self.traffic.lock().unwrap().down
    }

    pub fn up(&self) -> u64 {
        self.traffic.lock().unwrap().up
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> usize {
        self.traffic.lock().unwrap().cuts
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards one connection both ways until either side closes or a planned cut is reached; then
/// both sockets are dropped, so the device sees its request or answer end in the middle.
pub async fn relay(client: TcpStream, target: SocketAddr, traffic: Arc<Mutex<Traffic>>) {
    // The server is down: the device's connection is closed at once.
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut from_client = vec![0u8; 8 * 1024];
    let mut from_server = vec![0u8; 8 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut from_client) => {
                let Ok(n @ 1..) = read else { break };
                let (allowed, cut) = traffic.lock().unwrap().pass(true, n);
                if allowed > 0 && server_write.write_all(&from_client[..allowed]).await.is_err() {
                    break;
                }
                if cut {
                    break;
                }
            }
            read = server_read.read(&mut from_server) => {
                let Ok(n @ 1..) = read else { break };
                let (allowed, cut) = traffic.lock().unwrap().pass(false, n);
                if allowed > 0 && client_write.write_all(&from_server[..allowed]).await.is_err() {
                    break;
                }
                if cut {
                    break;
                }
            }
        }
    }
}
