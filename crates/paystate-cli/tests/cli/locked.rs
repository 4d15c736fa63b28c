use super::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// Kills the server child when the test ends, whatever happens.
struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn offline_commands_refuse_while_a_server_holds_the_data_directory() {
    let data = story_dir();
    let mut child = support::paystate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data",
            &data.arg(),
        ])
        .env("PAYSTATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    // The server logs "listening" once its store is open: wait for that line.
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("listening"));
    assert!(listening, "the server did not start");

    for args in [
        vec!["verify"],
        vec!["replay"],
        vec!["export"],
        vec!["audit", "provider", "vipps-test"],
    ] {
        let mut args = args;
        let data_arg = data.arg();
        args.extend(["--data", &data_arg]);
        let refused = run(&args).expect_code(2);
        assert!(
            refused
                .stderr
                .contains("is in use by a running paystate server; stop `paystate serve`"),
            "{args:?}: {}",
            refused.stderr
        );
    }
    drop(server);
}
