//! What the figures were measured with: every tool the reports name, with
//! its version, written or read here and nowhere else in the bench.
//!
//! The MongoDB-compatible server's and the mail catcher's versions are read
//! from their pins in `project/native/common.sh` (what `make start`
//! installs), rustc's from `rustc --version`; the load tools' are written
//! here as the reports have always given them.

use std::process::Command;

/// A tool whose version a report gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The compiler the services and the bench were built with.
    Rustc,
    /// The HTTP load tool of the broker's ceiling and the Go comparison.
    Wrk,
    /// postfix's SMTP load tool, for the mail catcher's ceiling.
    SmtpSource,
    /// The Python MongoDB driver of `mongo_insert.py`.
    Pymongo,
    /// The MongoDB-compatible server of the native stack.
    MongoServer,
    /// The mail catcher of the native stack.
    MailCatcher,
}

impl Tool {
    /// The tool as the reports name it, with its version: "wrk 4.1",
    /// "secantusdb 0.7.0b3", "rustc 1.95.0 (59807616e 2026-04-14)".
    pub fn named(self) -> String {
        match self {
            Tool::Rustc => output("rustc", &["--version"]),
            Tool::Wrk => "wrk 4.1".into(),
            Tool::SmtpSource => "postfix smtp-source".into(),
            Tool::Pymongo => "pymongo 4".into(),
            Tool::MongoServer => format!("secantusdb {}", pinned("SECANTUSDB_VERSION")),
            Tool::MailCatcher => format!("maildev {}", pinned("MAILDEV_VERSION")),
        }
    }
}

/// The native stack's settings, where its dependencies' versions are pinned.
const NATIVE_SETTINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../project/native/common.sh"
);

/// The value of `variable=` in [`NATIVE_SETTINGS`].
fn pinned(variable: &str) -> String {
    std::fs::read_to_string(NATIVE_SETTINGS)
        .ok()
        .and_then(|settings| pin_in(&settings, variable))
        .unwrap_or_else(|| format!("(no {variable} in project/native/common.sh)"))
}

/// The value a line `variable=value` of a shell script gives `variable`.
fn pin_in(script: &str, variable: &str) -> Option<String> {
    script.lines().find_map(|line| {
        let value = line.strip_prefix(variable)?.strip_prefix('=')?;
        Some(value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The commit checked out in `dir` (the current directory if `None`),
/// abbreviated; empty where git cannot tell.
pub fn commit(dir: Option<&str>) -> String {
    match dir {
        Some(dir) => output("git", &["-C", dir, "rev-parse", "--short", "HEAD"]),
        None => output("git", &["rev-parse", "--short", "HEAD"]),
    }
}

/// What `command args` prints, trimmed; empty if it cannot run.
pub fn output(command: &str, args: &[&str]) -> String {
    Command::new(command)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{Tool, pin_in};

    #[test]
    fn a_pin_is_the_value_of_its_own_variable() {
        let script =
            "SECANTUSDB_VERSION_OLD=1\nSECANTUSDB_VERSION=0.7.0b3\nMAILDEV_VERSION=\"2.2.1\"\n";
        assert_eq!(
            pin_in(script, "SECANTUSDB_VERSION").as_deref(),
            Some("0.7.0b3")
        );
        assert_eq!(pin_in(script, "MAILDEV_VERSION").as_deref(), Some("2.2.1"));
        assert_eq!(pin_in(script, "NODE_VERSION"), None);
    }

    /// The native stack's settings pin both versions the reports give.
    #[test]
    fn the_stack_s_pinned_versions_are_found() {
        for tool in [Tool::MongoServer, Tool::MailCatcher] {
            let named = tool.named();
            assert!(!named.contains("(no "), "{named}");
            let version = named.split_once(' ').unwrap().1;
            assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{named}");
        }
    }
}
