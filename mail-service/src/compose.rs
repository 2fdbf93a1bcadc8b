//! Turns a request into the MIME message that is sent: one
//! multipart/alternative message with the text exactly as given, and an HTML
//! version rendered from `templates/mail.html` (compiled into the binary),
//! whose styles are written inline, since mail clients drop `<style>`
//! blocks. (Inlining a stylesheet per mail, as css-inline did, parsed the
//! whole document again for every mail: most of the service's own CPU time
//! per mail, docs/bench/README.md.)

use std::hash::{BuildHasher, RandomState};

use anyhow::Context as _;
use askama::Template;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

/// A mail whose addresses have been checked.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: Mailbox,
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct MailHtml<'a> {
    subject: &'a str,
    /// The message's paragraphs, each its lines: one `<p>` per paragraph,
    /// `<br/>` between lines, each line HTML-escaped.
    paragraphs: Vec<Vec<&'a str>>,
    sender: &'a str,
}

/// `text` as paragraphs of lines: blank lines part paragraphs, single
/// newlines part lines (`\r\n` as `\n`); no empty paragraph.
fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut paragraphs = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// The HTML version of `mail`.
pub fn render_html(mail: &Mail) -> anyhow::Result<String> {
    let sender = mail
        .from
        .name
        .as_deref()
        .filter(|name| !name.is_empty())
        .map_or_else(|| mail.from.email.to_string(), str::to_owned);
    MailHtml {
        subject: &mail.subject,
        paragraphs: paragraphs(&mail.text),
        sender: &sender,
    }
    .render()
    .context("cannot render the mail template")
}

/// The complete message: headers, the plain part and the HTML part.
/// `domain` is the right-hand side of its Message-ID.
pub fn build_message(mail: &Mail, domain: &str) -> anyhow::Result<Message> {
    let html = render_html(mail)?;
    Message::builder()
        .from(mail.from.clone())
        .to(mail.to.clone())
        .subject(mail.subject.clone())
        .message_id(Some(message_id(domain)))
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), html))
        .context("cannot build the message")
}

/// `<32 random hex digits@domain>`. `RandomState` is seeded from the
/// operating system's randomness, which is all a Message-ID needs.
fn message_id(domain: &str) -> String {
    let random = |n: u8| RandomState::new().hash_one(n);
    format!("<{:016x}{:016x}@{domain}>", random(1), random(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(text: &str) -> Mail {
        Mail {
            from: "Sender <sender@example.com>".parse().unwrap(),
            to: "to@example.com".parse().unwrap(),
            subject: "Hello <there>".into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_html_part_is_escaped_with_inline_styles_and_no_style_block() {
        let html = render_html(&mail(
            "<b>bold</b> & \"quoted\"\nsecond line\n\nnew paragraph",
        ))
        .unwrap();
        assert!(
            html.contains("&#60;b&#62;bold&#60;/b&#62; &#38;") || html.contains("&lt;b&gt;bold"),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("<br/>second line") || html.contains("<br>second line"),
            "{html}"
        );
        assert_eq!(html.matches("<p").count(), 2, "two paragraphs: {html}");
        assert!(!html.contains("<style"), "{html}");
        assert!(html.contains("style=\""), "{html}");
        assert!(html.contains("Sent by Sender"), "{html}");
        assert!(
            !html.contains("<there>"),
            "the subject is escaped too: {html}"
        );
    }

    #[test]
    fn the_message_carries_both_parts_and_a_message_id_at_the_domain() {
        let message = build_message(&mail("a <b> & c"), "mail.example.org").unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        assert!(
            raw.contains("a <b> & c"),
            "the plain part is not escaped: {raw}"
        );
        let id_line = raw
            .lines()
            .find(|l| l.starts_with("Message-ID:"))
            .expect("a Message-ID");
        assert!(id_line.ends_with("@mail.example.org>"), "{id_line}");
    }

    #[test]
    fn a_newline_in_the_subject_cannot_add_a_header() {
        let mut m = mail("hi");
        m.subject = "Hi\r\nBcc: eve@example.com".into();
        let message = build_message(&m, "example.com").unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        let (headers, _) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            !headers.lines().any(|l| l.starts_with("Bcc:")),
            "header injected: {headers}"
        );
        assert!(headers.contains("Subject: =?utf-8?"), "{headers}");
    }

    #[test]
    fn blank_lines_part_paragraphs_and_newlines_part_lines() {
        assert_eq!(
            paragraphs("one\r\ntwo\n\n\n  \nthree\n"),
            vec![vec!["one", "two"], vec!["three"]]
        );
        assert!(paragraphs("").is_empty());
        assert!(paragraphs("\n \n").is_empty());
    }

    #[test]
    fn message_ids_differ() {
        assert_ne!(message_id("x"), message_id("x"));
    }
}
