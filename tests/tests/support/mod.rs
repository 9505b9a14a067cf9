//! Shared by the end-to-end tests: finding the tools they need, and running a function
//! under `cargo lambda watch`.
//!
//! A test that needs a tool (cargo-lambda, a moto server, the Python KPL library) carries
//! `#[cfg_attr(not(services), ignore = "needs ...")]`: a plain `cargo test --workspace`
//! lists it as ignored, with its reason. The README's test command sets
//! `KINESIS_PROCESSOR_REQUIRE_SERVICES=1` (see `tests/build.rs`), under which it runs, and
//! a missing tool fails it.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the environment promises every service (the README's test command).
pub fn services_required() -> bool {
    std::env::var_os("KINESIS_PROCESSOR_REQUIRE_SERVICES").is_some_and(|v| v == "1")
}

/// Fails a test whose service is missing although the environment promised it.
pub fn unavailable(test: &str, what: &str) -> ! {
    panic!("{test}: {what}; ./scripts/test-all installs and starts what the tests need");
}

/// The path of an executable on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// A TCP port on 127.0.0.1 that was free a moment ago, and never handed out before in this
/// test binary: tests run at once, and two emulators given one port made one test invoke
/// the other's, after it had stopped (seen in CI).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("a bound address").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// `cargo lambda watch` serving one package's function on 127.0.0.1.
pub struct LambdaWatch {
    child: Child,
    port: u16,
    function: String,
    log: PathBuf,
}

impl LambdaWatch {
    /// Starts the emulator for `package`, with extra environment for the function.
    pub fn start(package: &str, env: &[(&str, &str)]) -> LambdaWatch {
        Self::start_target(package, None, env)
    }

    /// Starts the emulator for binary `bin` of `package`; the function is named `bin`.
    pub fn start_bin(package: &str, bin: &str, env: &[(&str, &str)]) -> LambdaWatch {
        Self::start_target(package, Some(bin), env)
    }

    fn start_target(package: &str, bin: Option<&str>, env: &[(&str, &str)]) -> LambdaWatch {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("kp-watch-{package}-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new("cargo");
        command
            .current_dir(workspace())
            .args(["lambda", "watch", "--package", package, "--ignore-changes", "--quiet"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        if let Some(bin) = bin {
            command.args(["--bin", bin]);
        }
        for (key, value) in env {
            command.arg("--env-var").arg(format!("{key}={value}"));
        }
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("cargo lambda watch starts");
        let function = bin.unwrap_or(package).to_owned();
        let mut watch = LambdaWatch { child, port, function, log };
        watch.wait_for_port(Duration::from_secs(120));
        watch
    }

    fn wait_for_port(&mut self, limit: Duration) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cargo lambda watch exited ({status}) before listening:\n{}", self.log());
            }
            assert!(
                started.elapsed() < limit,
                "cargo lambda watch did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Invokes the function with the event in `file`; returns its response text. The first
    /// invocation waits for the function to be built.
    pub fn invoke(&self, file: &Path) -> String {
        let output = Command::new("cargo")
            .current_dir(workspace())
            .args(["lambda", "invoke", &self.function, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &self.port.to_string()])
            .arg("--data-file")
            .arg(file)
            .output()
            .expect("cargo lambda invoke runs");
        assert!(
            output.status.success(),
            "cargo lambda invoke failed: {}\nwatch log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8(output.stdout).expect("UTF-8 response")
    }

    /// What the emulator and the function have printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // The emulator runs the function as its child: stop the whole group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// cargo-lambda is on `PATH` (`cargo lambda` finds it there).
pub fn cargo_lambda_available() -> bool {
    find_tool("cargo-lambda").is_some()
}

/// A Python 3 with the official `aws-kinesis-agg` library importable, if there is one.
pub fn python_with_kinesis_agg() -> Option<PathBuf> {
    let python = std::env::var_os("KINESIS_PROCESSOR_PYTHON")
        .map(PathBuf::from)
        .or_else(|| find_tool("python3"))?;
    let probe = Command::new(&python)
        .args(["-c", "import aws_kinesis_agg.aggregator, aws_kinesis_agg.deaggregator"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    probe.success().then_some(python)
}
