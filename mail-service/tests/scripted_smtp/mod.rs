//! A scripted SMTP server that misbehaves on purpose, for the failures a
//! real server cannot be made to show on demand (silence, refusals, a hang
//! mid-session). The real one, mailcrab's catcher, is
//! `test_support::MailCatcher`. Compiled into each test binary; not every
//! binary uses every item.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How a [`ScriptedSmtp`] server behaves.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// Accepts connections and never says a word.
    Silent,
    /// Greets with this reply (e.g. `554 ...`) and then refuses everything.
    Greeting(&'static str),
    /// Speaks SMTP, answering every `RCPT TO` with this reply.
    RejectRecipients(&'static str),
    /// Speaks SMTP, offers `AUTH PLAIN` and accepts every mail and every
    /// login (see [`ScriptedSmtp::hang_next_mail`], [`ScriptedSmtp::logins`]).
    Accept,
}

/// A minimal SMTP server on a free port that follows a [`Script`], and
/// counts connections and delivered mails. Stopped (every socket closed)
/// when dropped.
pub struct ScriptedSmtp {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    pub delivered: Arc<AtomicUsize>,
    /// When set, the next `MAIL FROM` gets no answer, ever (the socket
    /// stays open).
    pub hang_next_mail: Arc<AtomicBool>,
    /// Every `AUTH` command received, as sent.
    pub logins: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ScriptedSmtp {
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(AtomicUsize::new(0));
        let hang_next_mail = Arc::new(AtomicBool::new(false));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let session_state = SessionState {
                delivered: delivered.clone(),
                hang: hang_next_mail.clone(),
                logins: logins.clone(),
            };
            let connections = connections.clone();
            async move {
                // Dropping the set (when this task is aborted) closes every
                // connection.
                let mut sessions = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    sessions.spawn(session(stream, script, session_state.clone()));
                }
            }
        });
        Self {
            port,
            connections,
            delivered,
            hang_next_mail,
            logins,
            task,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }

    pub fn logins(&self) -> Vec<String> {
        self.logins.lock().unwrap().clone()
    }
}

impl Drop for ScriptedSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct SessionState {
    delivered: Arc<AtomicUsize>,
    hang: Arc<AtomicBool>,
    logins: Arc<Mutex<Vec<String>>>,
}

async fn session(stream: TcpStream, script: Script, state: SessionState) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = match script {
        Script::Silent => {
            // Hold the socket open, reading (and ignoring) whatever comes.
            while let Ok(Some(_)) = lines.next_line().await {}
            return;
        }
        Script::Greeting(reply) => reply,
        Script::RejectRecipients(_) | Script::Accept => "220 scripted ESMTP",
    };
    let mut say = async |reply: &str| write.write_all(format!("{reply}\r\n").as_bytes()).await;
    if say(greeting).await.is_err() {
        return;
    }
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            // Not text (e.g. a TLS handshake): say nothing more, but keep
            // the socket open so the client sees what it already got.
            Err(_) => std::future::pending().await,
        };
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match (script, verb.as_str()) {
            (_, "QUIT") => {
                let _ = say("221 2.0.0 bye").await;
                return;
            }
            (Script::Greeting(_), _) => "503 5.5.1 no service here",
            (_, "EHLO") => "250-scripted\r\n250 AUTH PLAIN",
            (_, "HELO") => "250 scripted",
            (_, "AUTH") => {
                state.logins.lock().unwrap().push(line.clone());
                "235 2.7.0 authenticated"
            }
            (_, "MAIL") if state.hang.swap(false, Ordering::SeqCst) => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            (Script::RejectRecipients(reply), "RCPT") => reply,
            (_, "DATA") => {
                if say("354 go ahead").await.is_err() {
                    return;
                }
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                }
                state.delivered.fetch_add(1, Ordering::SeqCst);
                "250 2.0.0 queued"
            }
            (_, "MAIL" | "RCPT" | "NOOP" | "RSET") => "250 2.0.0 ok",
            _ => "502 5.5.2 command not recognised",
        };
        if say(reply).await.is_err() {
            return;
        }
    }
}
