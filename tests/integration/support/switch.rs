//! A TCP target that can refuse connections for a while, on the same port throughout: what
//! tests take down and bring back.

use std::{net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};

/// A TCP target that can refuse connections for a while (same port throughout).
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Target {
    /// Listens on a free loopback port.
    pub async fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut target = Target { addr, task: None };
        target.serve(listener);
        target
    }

    fn serve(&mut self, listener: TcpListener) {
        self.task = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }));
    }

    /// Refuses connections from now on.
    pub fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Accepts again, on the same port.
    pub async fn up(&mut self) {
        self.down();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }
}
