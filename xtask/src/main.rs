//! Project tasks:
//! - `cargo xtask bench [--json] [--filter NAME] [--secs S]`: the benchmark program;
//! - `cargo xtask shaders`: naga validation of every kernel variant, rendered by the real
//!   generator (the `validation` unit tests; no device needed);
//! - `cargo xtask fuzz [--minutes N] [--seed S] [--verbose]`: differential testing of random
//!   programs against the reference interpreter for N minutes (default 10) from seed S (default:
//!   from the clock), on the adapter `WGRAD_BACKEND` picks; failures print shrunk reproducers;
//! - `cargo xtask web [--port P] [--no-serve]`: builds the browser demo (wasm + bindings,
//!   `--target web`) into `web/pkg` and serves `web/` on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| {
        eprintln!("xtask: cannot run {cmd:?}: {e}");
        exit(1)
    });
    if !status.success() {
        exit(status.code().unwrap_or(1));
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The value after `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `cargo xtask fuzz`: the fuzz test binary with a time budget instead of its fixed seeds.
fn fuzz(cargo: &str, args: &[String]) {
    let minutes = flag_value(args, "--minutes").unwrap_or("10");
    if minutes.parse::<f64>().map_or(true, |m| m <= 0.0) {
        eprintln!("xtask fuzz: --minutes takes a positive number, got {minutes}");
        exit(2);
    }
    let seed = flag_value(args, "--seed")
        .map(str::to_string)
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // Far from the fixed budget's seeds (0..), so a run explores new programs.
            (1_000_000 + now % 1_000_000_000).to_string()
        });
    println!("xtask fuzz: {minutes} minutes from seed {seed}");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .args(["test", "--release", "--test", "fuzz", "--", "--nocapture"])
        .env("WGRAD_FUZZ_MINUTES", minutes)
        .env("WGRAD_FUZZ_SEED", &seed);
    if args.iter().any(|a| a == "--verbose") {
        cmd.env("WGRAD_FUZZ_VERBOSE", "1");
    }
    run(&mut cmd);
}

fn web(args: &[String]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(root()).args([
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "wgrad-web",
    ]));
    let wasm = root().join("target/wasm32-unknown-unknown/release/wgrad_web.wasm");
    let out = root().join("web/pkg");
    let mut bindgen = Command::new("wasm-bindgen");
    bindgen
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(&out)
        .arg(&wasm);
    if bindgen.status().map(|s| !s.success()).unwrap_or(true) {
        eprintln!(
            "xtask: wasm-bindgen failed or is missing; install the version in Cargo.lock:\n  \
             cargo install wasm-bindgen-cli --version $(grep -A1 'name = \"wasm-bindgen\"' Cargo.lock | sed -n 's/version = \"\\(.*\\)\"/\\1/p')"
        );
        exit(1);
    }
    if args.iter().any(|a| a == "--no-serve") {
        println!("xtask: built {}", out.display());
        return;
    }
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8000);
    serve(&root().join("web"), port);
}

/// A minimal static file server on 127.0.0.1 (enough for the demo page).
fn serve(dir: &Path, port: u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("xtask: cannot listen on 127.0.0.1:{port}: {e}");
        exit(1)
    });
    println!(
        "xtask: serving {} at http://127.0.0.1:{port}/ (Ctrl-C to stop)",
        dir.display()
    );
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        let rel = if path == "/" {
            "index.html".to_string()
        } else {
            path.trim_start_matches('/').to_string()
        };
        let file = dir.join(&rel);
        let inside = file
            .canonicalize()
            .ok()
            .zip(dir.canonicalize().ok())
            .is_some_and(|(f, d)| f.starts_with(d));
        let (status, body, kind) = match std::fs::read(&file) {
            Ok(body) if inside => ("200 OK", body, content_type(&rel)),
            _ => ("404 Not Found", b"not found".to_vec(), "text/plain"),
        };
        let head = format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|_| stream.write_all(&body));
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match args.first().map(String::as_str) {
        Some("bench") => {
            // A standalone release binary, so it also runs where there is no cargo.
            run(Command::new(&cargo).current_dir(root()).args([
                "build",
                "--release",
                "--example",
                "bench",
            ]));
            run(Command::new(root().join("target/release/examples/bench")).args(&args[1..]));
        }
        Some("shaders") => {
            run(Command::new(&cargo).current_dir(root()).args([
                "test",
                "--release",
                "--lib",
                "validation",
                "--",
                "--nocapture",
            ]));
        }
        Some("fuzz") => fuzz(&cargo, &args[1..]),
        Some("web") => web(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--json] [--filter NAME] [--secs S]\n       cargo xtask shaders\n       cargo xtask fuzz [--minutes N] [--seed S] [--verbose]\n       cargo xtask web [--port P] [--no-serve]"
            );
            exit(2);
        }
    }
}
