//! The busbar command line as a library: [`run`] takes the arguments, the working directory
//! and the output streams, and returns the exit code. `main.rs` only wires it to the process.
//!
//! Exit codes (every command): 0 success (warnings and notes allowed), 1 the input has errors
//! or a check failed, 2 usage or environment error.

mod analyze;
mod asyncapi;
mod audit;
mod backend;
mod dev;
mod diagram;
mod dlq;
mod files;
mod pipeline;
mod plan;
mod schema;
mod serve;
mod summary;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// The frontends every command analyzes an app with, in the order their facts are merged
/// (the first declaration of a topic name wins).
pub const FRONTENDS: &[busbar_analysis::Frontend] = &[busbar_ts::FRONTEND, busbar_rs::FRONTEND];

/// What the caller knows about the process busbar runs in.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Colour diagnostics on stderr (it is a terminal that wants colour).
    pub color: bool,
    /// The `busbar` executable, which [`run`] can start as a child to check a file nested
    /// too deeply to analyze safely (see `busbar_analysis::Options::checker`). The binary passes
    /// itself; a library caller without it gets such files analyzed unchecked.
    pub exe: Option<PathBuf>,
}

#[derive(Parser, Debug)]
#[command(
    name = "busbar",
    version,
    about = "An infrastructure compiler for pub/sub: reads your services' code, emits least-privilege infrastructure."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyze an app: services, topics, publishers, subscriptions, and diagnostics.
    Analyze(AnalyzeArgs),
    /// Plan the cloud resources of an app (AWS, GCP, Dapr) with least-privilege grants.
    Plan(PlanArgs),
    /// Draw the app: services, topics, publishers and subscriptions (Mermaid, DOT, SVG, or
    /// an interactive HTML page).
    Diagram(DiagramArgs),
    /// Check the permissions the code needs against busbar.lock, busbar.toml's [audit]
    /// policy, and deployed IAM: for CI.
    Audit(AuditArgs),
    /// Run the app's broker and a Dapr-compatible pub/sub sidecar on 127.0.0.1, enforcing
    /// the permission graph, until Ctrl-C.
    Dev(DevArgs),
    /// The sidecar for production: the Dapr pub/sub API for one service, on the embedded
    /// broker or AWS (SNS/SQS), enforcing the service's grants, until SIGTERM.
    Serve(ServeArgs),
    /// List or release dead letters: through a running `busbar dev`, on its data directory,
    /// or on AWS (`--backend aws`).
    Dlq(DlqArgs),
    /// Print the JSON Schema (2020-12) of each topic's messages, read from the code's types.
    Schema(SchemaArgs),
    /// Print the app's AsyncAPI 3.0 document: topics as channels with their message schemas,
    /// an operation per publishing service and per subscription, AWS and GCP bindings.
    Asyncapi(AsyncapiArgs),
    /// Write every output of an app: Terraform modules, Dapr manifests, plan.json,
    /// runtime-config.json and the diagrams.
    Build(BuildArgs),
    /// Internal: analyzes one file, read from stdin, on a fresh worker-sized stack and exits 0
    /// if that finished. `busbar analyze` runs it in a child process for a file it cannot
    /// prove fits the stack; a child that overflows dies instead of busbar.
    #[command(name = busbar_ts::CHECK_SUBCOMMAND, hide = true)]
    CheckFile(CheckFileArgs),
}

#[derive(Args, Debug)]
struct CheckFileArgs {
    /// The file lies in a service known before parsing.
    #[arg(long)]
    in_service: bool,
    /// The file is an `encore.service.ts`.
    #[arg(long)]
    declares_service: bool,
    /// The file's path relative to the app root (it decides the syntax: `.tsx` or not).
    path: String,
}

fn check_file(args: &CheckFileArgs) -> u8 {
    use std::io::Read;
    let mut bytes = Vec::new();
    if std::io::stdin().lock().read_to_end(&mut bytes).is_err() {
        return EXIT_USAGE;
    }
    busbar_ts::check_file_main(&args.path, args.in_service, args.declares_service, bytes);
    EXIT_OK
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TargetChoice {
    Aws,
    Gcp,
    Dapr,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    /// The rendered files: Terraform modules (`terraform/aws/*.tf`, `terraform/gcp/*.tf`),
    /// Dapr manifests (`dapr/*.yaml`), and `plan.json`; needs `--out`.
    Terraform,
    /// The plan data (`plan.json`): every resource and grant, with the code behind it.
    Json,
}

/// What every command that reads an app takes.
#[derive(Args, Debug)]
struct AppArgs {
    /// The app directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Treat every warning as an error.
    #[arg(long)]
    strict: bool,
    /// Worker threads (default: RAYON_NUM_THREADS, else one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Parse every file, not only those that can declare, publish or subscribe (the output
    /// is the same, but for syntax errors in files that cannot hold a fact).
    #[arg(long)]
    parse_all: bool,
    /// Colour diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Args, Debug)]
struct PlanArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Which provider to plan for.
    #[arg(long, value_enum, default_value_t = TargetChoice::All)]
    target: TargetChoice,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Json)]
    format: PlanFormat,
    /// Write `plan.json` (and, with `--format terraform`, the modules and manifests) into
    /// this directory instead of printing it. Nothing is written when the app has errors.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print every grant of this service with the code location that needs it.
    #[arg(long, value_name = "SERVICE")]
    explain: Option<String>,
    /// A previous `plan.json`: warn about every queue, subscription or topic the new plan
    /// destroys or replaces, and what messages that loses.
    #[arg(long, value_name = "OLD_PLAN")]
    against: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DiagramFormat {
    /// A Mermaid flowchart (GitHub renders it in Markdown).
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// An SVG laid out by busbar itself.
    Svg,
    /// One self-contained HTML page: the SVG with pan and zoom, search, and details.
    Html,
}

#[derive(Args, Debug)]
struct DiagramArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagramFormat::Mermaid)]
    format: DiagramFormat,
    /// Write to this file instead of printing. Nothing is written when the app has errors.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep one service or topic and its neighbours: `service=NAME` or `topic=NAME`.
    #[arg(long, value_name = "service=NAME|topic=NAME")]
    focus: Option<String>,
    /// Draw each subscription's dead-letter queue.
    #[arg(long)]
    dlq: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    /// Findings grouped per service, with source snippets (on stderr), and a summary line.
    Human,
    /// The findings as JSON.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// GitHub workflow commands (`::error file=...::...`), annotations on the pull request.
    Github,
}

#[derive(Args, Debug)]
struct AuditArgs {
    #[command(flatten)]
    app: AppArgs,
    /// The permission lockfile (default: DIR/busbar.lock).
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
    /// Write the lockfile from the code's grants, then audit against it.
    #[arg(long)]
    update: bool,
    /// Deployed IAM to check against the code: AWS policy documents per service, Terraform
    /// state (`terraform show -json`), or GCP IAM policies per resource. Repeatable.
    #[arg(long, value_name = "FILE")]
    iam: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Human)]
    format: AuditFormat,
}

#[derive(Args, Debug)]
struct DevArgs {
    #[command(flatten)]
    app: AppArgs,
    /// The port of the Dapr HTTP API.
    #[arg(long, default_value_t = 3500)]
    port: u16,
    /// Where the broker keeps its messages (default: DIR/.busbar/data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Refuse publishes (HTTP 507, nothing stored) while the data directory's disk has less
    /// than this many MiB free; deliveries go on. 0: only a truly full disk refuses.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    min_free_disk: u64,
    /// Start only these services (comma-separated); the others with a `command` are not
    /// started (their deliveries wait).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', conflicts_with = "no_start")]
    only: Vec<String>,
    /// Start none of the services: every one is external (you start it, with its `url`).
    #[arg(long)]
    no_start: bool,
    /// Analyze the app again on every saved change: a valid graph replaces the running one
    /// and the services whose code changed are restarted; one with errors is reported and
    /// the old graph stays.
    #[arg(long)]
    watch: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    app: AppArgs,
    /// A runtime-config.json written by `busbar build`, served instead of analyzing DIR (the
    /// AWS names then come from the plan.json beside it, or --outputs).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The service this sidecar is: every request is its, and only its grants apply.
    #[arg(long, value_name = "NAME")]
    service: String,
    #[command(flatten)]
    backend: backend::BackendArgs,
    /// The port of the Dapr HTTP API (on 127.0.0.1).
    #[arg(long, default_value_t = 3500)]
    port: u16,
    /// Where the service listens for deliveries (default: http://127.0.0.1:$APP_PORT).
    #[arg(long, value_name = "URL")]
    app_url: Option<String>,
    /// The sidecar's data directory: the embedded broker's messages, the admin token
    /// (default: DIR/.busbar/serve-SERVICE).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DlqArgs {
    #[command(subcommand)]
    action: DlqAction,
}

#[derive(Subcommand, Debug)]
enum DlqAction {
    /// List the dead letters of every subscription (or one).
    List(DlqCommon),
    /// Move dead letters back for delivery.
    Release(DlqReleaseArgs),
}

#[derive(Args, Debug)]
struct DlqCommon {
    #[command(flatten)]
    app: AppArgs,
    /// One subscription: its name, or TOPIC/NAME.
    #[arg(long, value_name = "NAME")]
    subscription: Option<String>,
    /// The port of the `busbar dev` serving the data directory (default: the one it recorded
    /// in the data directory).
    #[arg(long)]
    port: Option<u16>,
    /// The data directory (default: DIR/.busbar/data): through the `busbar dev` that holds it,
    /// or directly when none does.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    backend: backend::BackendArgs,
}

#[derive(Args, Debug)]
struct DlqReleaseArgs {
    #[command(flatten)]
    common: DlqCommon,
    /// Only the messages with these ids (repeatable; default: all).
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
}

#[derive(Args, Debug)]
struct SchemaArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Only this topic's schema (default: an object of every topic's, by name).
    #[arg(long, value_name = "NAME")]
    topic: Option<String>,
    /// Write to this file instead of printing. Nothing is written when the app has errors.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AsyncapiFormat {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
struct AsyncapiArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AsyncapiFormat::Yaml)]
    format: AsyncapiFormat,
    /// Write to this file instead of printing. Nothing is written when the app has errors.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BuildArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Where to write (created if needed). Nothing is written when the app has errors.
    #[arg(long, value_name = "DIR", default_value = "out")]
    out: PathBuf,
    /// The outputs of the app's Terraform module (`terraform output -json > FILE`), AWS or GCP:
    /// also write `encore/infra.config.json`, the pub/sub section of Encore's infra config
    /// with the ARNs and queue URLs (AWS) or the Pub/Sub names (GCP) Terraform created.
    #[arg(long, value_name = "FILE")]
    outputs: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
struct AnalyzeArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Output format: a readable summary, or the versioned JSON model.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also list diagnostics silenced by `busbar-ignore` comments or busbar.toml.
    #[arg(long)]
    show_suppressed: bool,
    /// Report progress on stderr.
    #[arg(long)]
    progress: bool,
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (mimalloc.h); libmimalloc-sys 0.1.49
/// does not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tunes the allocator for a short-lived process: freed memory stays with the process instead
/// of being returned to the OS after 10 ms and faulted back in (and zeroed) for the next file,
/// and no transparent huge pages.
/// Call once at start-up, before spawning threads.
pub fn tune_allocator() {
    #[expect(
        unsafe_code,
        reason = "mimalloc's option setter is a C function; it takes plain integers"
    )]
    // SAFETY: `mi_option_set` only records an integer option; any value is valid for it.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
    no_huge_pages();
}

/// Whether transparent huge pages were off for this process before [`tune_allocator`] turned
/// them off: what the processes it starts (`busbar dev`'s services) get back.
static HUGE_PAGES_WERE_OFF: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Turns transparent huge pages off for this process (Linux). mimalloc asks for them on its
/// arenas, and each fault then zeroes (and may compact for) 2 MiB: on the Rust corpus of
/// `cargo xtask bench analyze-rust` that was 4 to 5 s of kernel time in a 20 s one-thread
/// analysis, against 1 s without. mimalloc's own option is read when it starts, before
/// `main`, so it is set through `prctl` here.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        let before = rustix::thread::transparent_huge_pages_are_disabled().unwrap_or(false);
        HUGE_PAGES_WERE_OFF.store(before, std::sync::atomic::Ordering::Relaxed);
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

/// The huge-page setting a child process should run with: the one busbar started with (the
/// flag is inherited across `fork` and `exec`).
pub(crate) fn inherited_huge_pages_off() -> bool {
    HUGE_PAGES_WERE_OFF.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs busbar with `args` (including the program name) and returns the exit code.
pub fn run<I, T>(args: I, cwd: &Path, host: &Host, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let text =
                if host.color { e.render().ansi().to_string() } else { e.render().to_string() };
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(out, "{text}");
                    EXIT_OK
                }
                _ => {
                    let _ = write!(err, "{text}");
                    EXIT_USAGE
                }
            };
        }
    };
    match cli.command {
        Command::Analyze(args) => analyze::run(&args, cwd, host, out, err),
        Command::Plan(args) => plan::run(&args, cwd, host, out, err),
        Command::Diagram(args) => diagram::run(&args, cwd, host, out, err),
        Command::Audit(args) => audit::run(&args, cwd, host, out, err),
        Command::Dev(args) => dev::run(&args, cwd, host, err),
        Command::Serve(args) => serve::run(&args, cwd, host, err),
        Command::Dlq(args) => dlq::run(&args, cwd, host, out, err),
        Command::Schema(args) => schema::run(&args, cwd, host, out, err),
        Command::Asyncapi(args) => asyncapi::run(&args, cwd, host, out, err),
        Command::Build(args) => plan::build(&args, cwd, host, out, err),
        Command::CheckFile(args) => check_file(&args),
    }
}

fn use_color(choice: ColorChoice, host: &Host) -> bool {
    match choice {
        ColorChoice::Auto => host.color,
        ColorChoice::Always => true,
        ColorChoice::Never => false,
    }
}

/// The directory argument as the user wrote it, with `/` separators, for output.
fn display_dir(dir: &Path) -> String {
    let s = dir.to_string_lossy().replace('\\', "/");
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() {
        if s.is_empty() { ".".into() } else { "/".into() }
    } else {
        trimmed.to_string()
    }
}
