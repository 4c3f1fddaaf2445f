//! What the standards' tests share: running the independent parsers (Python packages listed in
//! `scripts/validators-requirements.txt`) that check our exports.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `script` with Python 3: `args` after it, `env` set, `stdin` on its standard input.
/// `None` when python3 or one of `modules` is missing: the test then fails under
/// `QUARTIER_REQUIRE_VALIDATORS` (as CI sets it) and otherwise only prints a note.
pub fn python(
    script: &str,
    modules: &[&str],
    args: &[&str],
    env: &[(&str, String)],
    stdin: &[u8],
) -> Option<Output> {
    let probe = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output();
    let missing = match probe {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Some(format!("python3 cannot be run ({e})")),
    };
    if let Some(why) = missing {
        assert!(
            std::env::var_os("QUARTIER_REQUIRE_VALIDATORS").is_none(),
            "QUARTIER_REQUIRE_VALIDATORS is set but python3 with {modules:?} is missing: {why}"
        );
        eprintln!(
            "note: skipping the independent check, python3 with {modules:?} is missing ({why}); see scripts/validators-requirements.txt"
        );
        return None;
    }
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child
        .stdin
        .take()
        .expect("a pipe to python3")
        .write_all(stdin)
        .expect("python3 reads its input");
    Some(child.wait_with_output().expect("python3 ends"))
}
