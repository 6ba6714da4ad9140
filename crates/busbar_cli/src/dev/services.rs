//! The services `busbar dev` starts: each `[dev.services.NAME] command`, run through the shell
//! in the service's root with `APP_PORT`, `DAPR_HTTP_PORT`, `DAPR_API_TOKEN`, `BUSBAR_SERVICE`
//! and `BUSBAR_PUBSUB` set, its output on busbar's stdout with its name in front.
//!
//! Each runs in a process group of its own, and on Linux dies with busbar (a parent-death
//! signal), so no process outlives `busbar dev`, even killed. A service that exits is
//! reported with its status and started again after a backoff (1 s, doubling to 30 s; back to
//! 1 s once it ran 10 s), so a command that fails at once is not restarted in a tight loop.
//! Stopping sends SIGTERM to the group, then SIGKILL after 5 s.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// How to start one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Launch {
    pub name: String,
    /// Its root directory (absolute).
    pub root: PathBuf,
    pub command: String,
    pub env: Vec<(String, String)>,
}

/// What a running service task is told.
#[derive(Clone, Copy, Debug)]
enum Control {
    Restart,
    Stop,
}

/// What the service tasks report to `busbar dev`.
#[derive(Debug)]
pub(crate) enum Event {
    /// The service's process was started again (its routes may have changed).
    Restarted(String),
}

/// Where output goes: busbar's stdout, one whole line at a time.
#[derive(Clone)]
struct Output {
    lock: Arc<Mutex<()>>,
    colour: bool,
    width: usize,
}

impl Output {
    fn line(&self, name: &str, index: usize, text: &str) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let width = self.width;
        let mut out = std::io::stdout().lock();
        let _ = if self.colour {
            // Six readable ANSI colours, one per service in order.
            let colour = 31 + (index % 6);
            writeln!(out, "\x1b[{colour}m{name:width$} |\x1b[0m {text}")
        } else {
            writeln!(out, "{name:width$} | {text}")
        };
        let _ = out.flush();
    }
}

/// The started services.
pub(crate) struct Services {
    controls: BTreeMap<String, mpsc::UnboundedSender<Control>>,
    /// How each was started, to tell a changed command from changed code.
    launches: BTreeMap<String, Launch>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    output: Output,
    events: mpsc::UnboundedSender<Event>,
    next_index: usize,
}

impl Services {
    /// Starts each of `launches`; `events` receives their restarts.
    pub(crate) fn start(launches: Vec<Launch>, events: mpsc::UnboundedSender<Event>) -> Services {
        let width = launches.iter().map(|l| l.name.len()).max().unwrap_or(0).max(7);
        let output = Output {
            lock: Arc::default(),
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            width,
        };
        let mut services = Services {
            controls: BTreeMap::new(),
            launches: BTreeMap::new(),
            tasks: Vec::new(),
            output,
            events,
            next_index: 0,
        };
        for launch in launches {
            services.add(launch);
        }
        services
    }

    /// The names of the services started.
    pub(crate) fn names(&self) -> impl Iterator<Item = &String> {
        self.controls.keys()
    }

    /// Starts one more service.
    pub(crate) fn add(&mut self, launch: Launch) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.controls.insert(launch.name.clone(), tx);
        self.launches.insert(launch.name.clone(), launch.clone());
        let index = self.next_index;
        self.next_index += 1;
        let task = supervise(launch, index, rx, self.output.clone(), self.events.clone());
        self.tasks.push(tokio::spawn(task));
    }

    /// Restarts `name` now (its code changed).
    pub(crate) fn restart(&self, name: &str) {
        if let Some(c) = self.controls.get(name) {
            let _ = c.send(Control::Restart);
        }
    }

    /// How `name` was started.
    pub(crate) fn launch_of(&self, name: &str) -> Option<&Launch> {
        self.launches.get(name)
    }

    /// Stops `name` (the app no longer has it, or its command changed).
    pub(crate) fn remove(&mut self, name: &str) {
        self.launches.remove(name);
        if let Some(c) = self.controls.remove(name) {
            let _ = c.send(Control::Stop);
        }
    }

    /// Stops every service: SIGTERM to each process group, SIGKILL to those still there
    /// after 5 s.
    pub(crate) async fn stop(self) {
        for c in self.controls.values() {
            let _ = c.send(Control::Stop);
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Says something about a service on busbar's stdout, in its column.
fn say(output: &Output, name: &str, index: usize, text: &str) {
    output.line(name, index, &format!("busbar: {text}"));
}

/// Runs one service until it is stopped: starts it, pumps its output, and starts it again
/// after it exits (with backoff) or when told to.
async fn supervise(
    launch: Launch,
    index: usize,
    mut control: mpsc::UnboundedReceiver<Control>,
    output: Output,
    events: mpsc::UnboundedSender<Event>,
) {
    let name = launch.name.clone();
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    loop {
        let started = Instant::now();
        let mut child = match spawn(&launch) {
            Ok(child) => child,
            Err(e) => {
                say(&output, &name, index, &format!("cannot start `{}`: {e}", launch.command));
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    c = control.recv() => if !matches!(c, Some(Control::Restart)) { return },
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if !first {
            let _ = events.send(Event::Restarted(name.clone()));
        }
        first = false;
        let pid = child.id();
        say(
            &output,
            &name,
            index,
            &format!("started `{}` (pid {})", launch.command, pid.unwrap_or(0)),
        );
        let pumps = [
            child.stdout.take().map(|s| tokio::spawn(pump(s, output.clone(), name.clone(), index))),
            child.stderr.take().map(|s| tokio::spawn(pump(s, output.clone(), name.clone(), index))),
        ];
        let told = tokio::select! {
            status = child.wait() => {
                for p in pumps.into_iter().flatten() {
                    let _ = p.await;
                }
                let ran = started.elapsed();
                if ran >= Duration::from_secs(10) {
                    backoff = Duration::from_secs(1);
                }
                let status = match status {
                    Ok(s) => describe(s),
                    Err(e) => format!("could not be waited for ({e})"),
                };
                say(&output, &name, index, &format!(
                    "exited {status} after {:.1} s; starting it again in {} s",
                    ran.as_secs_f64(),
                    backoff.as_secs()
                ));
                let told = tokio::select! {
                    () = tokio::time::sleep(backoff) => None,
                    c = control.recv() => Some(c.unwrap_or(Control::Stop)),
                };
                backoff = (backoff * 2).min(Duration::from_secs(30));
                match told {
                    Some(Control::Stop) => return,
                    _ => continue,
                }
            }
            c = control.recv() => c.unwrap_or(Control::Stop),
        };
        terminate(&mut child, pid).await;
        for p in pumps.into_iter().flatten() {
            let _ = p.await;
        }
        match told {
            Control::Stop => {
                say(&output, &name, index, "stopped");
                return;
            }
            Control::Restart => {
                say(&output, &name, index, "restarting: its code changed");
                backoff = Duration::from_secs(1);
            }
        }
    }
}

/// An exit status in words.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(127), _) => "with status 127 (the shell found no such command)".to_string(),
        (Some(code), _) => format!("with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "abnormally".to_string(),
    }
}

/// Reads `stream` line by line onto busbar's stdout.
async fn pump(stream: impl AsyncRead + Unpin, output: Output, name: String, index: usize) {
    let mut lines = BufReader::new(stream).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => output.line(&name, index, &line),
            Ok(None) => return,
            // Not UTF-8: said once, and the rest of the stream is dropped.
            Err(e) => {
                say(&output, &name, index, &format!("output not shown: {e}"));
                return;
            }
        }
    }
}

/// The line the shell runs: a simple command (words, no operators, no leading assignment)
/// is `exec`'d, so the service's own process is the shell's and the parent-death signal
/// reaches it; anything else runs as written (its children are stopped with the group).
fn shell_line(command: &str) -> String {
    let command = command.trim();
    let simple = !command.contains(|c: char| ";&|<>()$`\\\n*?{}[]~#!".contains(c))
        && command.split_whitespace().next().is_some_and(|w| !w.contains('='));
    if simple { format!("exec {command}") } else { command.to_string() }
}

/// Starts the service's command in a process group of its own.
fn spawn(launch: &Launch) -> std::io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(shell_line(&launch.command))
        .current_dir(&launch.root)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    cmd.spawn()
}

/// On Linux, the child is sent SIGKILL when busbar dies (even by SIGKILL); a simple command
/// is `exec`'d ([`shell_line`]), so that is the service's own process. (The signal comes when
/// the *thread* that forked the child ends: the children are spawned from tokio's worker
/// threads, which live as long as the runtime; nothing here calls `block_in_place` on one.)
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "pre_exec runs a prctl in the child before exec")]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = rustix::process::getpid();
    let huge_pages_off = crate::inherited_huge_pages_off();
    // SAFETY: the closure only makes async-signal-safe system calls (prctl, getppid, _exit),
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // busbar turned huge pages off for itself (`tune_allocator`); the service gets the
            // setting busbar was started with.
            rustix::thread::disable_transparent_huge_pages(huge_pages_off)?;
            // The parent died before the prctl: the signal would never come.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("busbar exited while starting the service"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut tokio::process::Command) {}

/// SIGTERM to the service's process group, SIGKILL after 5 s.
async fn terminate(child: &mut tokio::process::Child, pid: Option<u32>) {
    let group = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32));
    let signal = |s| {
        if let Some(g) = group {
            let _ = rustix::process::kill_process_group(g, s);
        }
    };
    signal(rustix::process::Signal::TERM);
    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
        signal(rustix::process::Signal::KILL);
        let _ = child.wait().await;
    }
    // What the group left behind (a child of the shell) goes too.
    signal(rustix::process::Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::shell_line;

    #[test]
    fn simple_commands_are_execd_and_others_run_as_written() {
        assert_eq!(shell_line("node --import tsx ./main.ts"), "exec node --import tsx ./main.ts");
        assert_eq!(shell_line("  npm start "), "exec npm start");
        assert_eq!(shell_line("echo a; sleep 1"), "echo a; sleep 1");
        assert_eq!(shell_line("PORT=1 node x.js"), "PORT=1 node x.js");
        assert_eq!(shell_line("node $ENTRY"), "node $ENTRY");
        assert_eq!(shell_line("a && b"), "a && b");
    }
}
