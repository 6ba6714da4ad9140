//! A local server a test starts on 127.0.0.1 and stops when it is dropped: a moto server for
//! SNS, SQS, IAM and STS.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server the test started, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub endpoint: String,
    pub port: u16,
    child: Child,
}

impl Server {
    /// `moto_server` (at `path`) on a free port, once it accepts connections (at most 30 s).
    pub fn moto(path: &Path) -> std::io::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = Server { endpoint: format!("http://127.0.0.1:{port}"), port, child };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) || server.child.try_wait()?.is_some() {
                return Err(std::io::Error::other(format!(
                    "{} did not listen on {port} within 30 s",
                    path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
