//! Project tasks: `cargo xtask bench [--json] [--filter NAME] [--secs S]` and
//! `cargo xtask shaders`.

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match args.first().map(String::as_str) {
        Some("bench") => {
            // A standalone release binary, so it also runs where there is no cargo.
            run(Command::new(&cargo).args(["build", "--release", "--example", "bench"]));
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            run(Command::new(root.join("target/release/examples/bench")).args(&args[1..]));
        }
        Some("shaders") => {
            run(Command::new(&cargo).args([
                "test",
                "--release",
                "--test",
                "shaders",
                "--",
                "--nocapture",
            ]));
        }
        _ => {
            eprintln!("usage: cargo xtask bench [--json] [--filter NAME] [--secs S]\n       cargo xtask shaders");
            exit(2);
        }
    }
}
