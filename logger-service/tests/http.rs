//! The JSON API against a real MongoDB-compatible server.

use std::time::Duration;

use proto::http::LogEntry;
use proto::{MAX_LOG_DATA_BYTES, MAX_LOG_NAME_BYTES};
use serde_json::json;
use test_support::{data, spawn_logger};

#[tokio::test]
async fn posted_entries_are_listed_newest_first() {
    let mut logger = spawn_logger().await;
    for i in 0..3 {
        let (status, envelope) = logger
            .post(
                "/log",
                json!({"name": format!("event-{i}"), "data": format!("data {i}")}),
            )
            .await;
        assert_eq!(status, 202, "{envelope:?}");
        assert!(!envelope.error);
        assert_eq!(envelope.message, "logged");
        let stored = data::<LogEntry>(&envelope);
        assert_eq!(stored.name, format!("event-{i}"));
        assert_eq!(stored.created_at, stored.updated_at);
    }

    let entries = logger.list_logs("").await;
    let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["event-2", "event-1", "event-0"]);
    assert_eq!(entries[0].data, "data 2");
    assert_eq!(entries[0].id.len(), 24, "a hex ObjectId");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&entries[0].created_at).is_ok(),
        "{}",
        entries[0].created_at
    );
    assert!(entries[0].created_at.ends_with('Z'), "UTC");
    logger.stop().await;
}

#[tokio::test]
async fn a_body_without_data_is_accepted_and_one_not_declared_as_json_is_a_415() {
    let mut logger = spawn_logger().await;
    let post = |content_type: &'static str| {
        logger
            .client
            .post(logger.url("/log"))
            .header("content-type", content_type)
            .body(r#"{"name":"curl","extra":1}"#)
            .send()
    };
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let response = post(content_type).await.unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], true);
        assert!(
            body["message"].as_str().unwrap().contains(content_type),
            "the message names what was sent: {body}"
        );
    }
    assert!(logger.list_logs("").await.is_empty(), "nothing stored");
    let response = post("application/json").await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(logger.list_logs("").await[0].data, "");
    logger.stop().await;
}

/// A page on any site (the test page's included) writing or reading the
/// log from the browser: refused before any route runs (docs/security.md).
#[tokio::test]
async fn a_cross_site_request_is_a_403_and_stores_nothing() {
    let mut logger = spawn_logger().await;
    for origin in [
        "http://evil.example",
        "http://localhost",
        "http://127.0.0.1:8081",
    ] {
        let (status, envelope) = logger
            .post_from_page(origin, "/log", json!({"name": "forged", "data": "x"}))
            .await;
        assert_eq!(status, 403, "{origin}: {envelope:?}");
        assert!(envelope.error);
        assert!(envelope.message.contains(origin), "{envelope:?}");
        let response = logger
            .client
            .get(logger.url("/logs"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "GET /logs from {origin}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "no CORS grant"
        );
    }
    assert!(logger.list_logs("").await.is_empty(), "nothing stored");
    logger.stop().await;
}

#[tokio::test]
async fn limit_and_skip_page_through_the_entries() {
    let mut logger = spawn_logger().await;
    for i in 0..5 {
        let (status, _) = logger.post("/log", json!({"name": format!("e{i}")})).await;
        assert_eq!(status, 202);
    }
    let names = |entries: Vec<proto::http::LogEntry>| {
        entries.into_iter().map(|e| e.name).collect::<Vec<_>>()
    };
    assert_eq!(names(logger.list_logs("?limit=2").await), ["e4", "e3"]);
    assert_eq!(
        names(logger.list_logs("?limit=2&skip=2").await),
        ["e2", "e1"]
    );
    assert_eq!(names(logger.list_logs("?skip=4").await), ["e0"]);
    assert!(logger.list_logs("?skip=5").await.is_empty());
    assert_eq!(logger.list_logs("?limit=1000").await.len(), 5);
    logger.stop().await;
}

#[tokio::test]
async fn bad_paging_numbers_are_refused_in_the_envelope() {
    let mut logger = spawn_logger().await;
    for query in [
        "?limit=abc",
        "?limit=-1",
        "?limit=0",
        "?limit=1001",
        "?skip=-3",
        "?skip=x",
        "?skip=10001",
    ] {
        let (status, envelope) = logger.get(&format!("/logs{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(envelope.error, "{query}");
        assert!(
            envelope.message.contains("limit") || envelope.message.contains("skip"),
            "{query}: {}",
            envelope.message
        );
    }
    logger.stop().await;
}

#[tokio::test]
async fn one_entry_can_be_read_updated_and_the_collection_dropped() {
    let mut logger = spawn_logger().await;
    let (_, envelope) = logger
        .post("/log", json!({"name": "first", "data": "one"}))
        .await;
    let created = data::<LogEntry>(&envelope);

    let (status, envelope) = logger.get(&format!("/logs/{}", created.id)).await;
    assert_eq!(status, 200);
    assert_eq!(data::<LogEntry>(&envelope), created);

    // updated_at has millisecond resolution.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, envelope) = logger
        .put(
            &format!("/logs/{}", created.id),
            json!({"name": "renamed", "data": "two"}),
        )
        .await;
    assert_eq!(status, 202, "{envelope:?}");
    let updated = data::<LogEntry>(&envelope);
    assert_eq!(updated.id, created.id);
    assert_eq!(
        (updated.name.as_str(), updated.data.as_str()),
        ("renamed", "two")
    );
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at, "{updated:?}");

    let (_, envelope) = logger.get(&format!("/logs/{}", created.id)).await;
    assert_eq!(data::<LogEntry>(&envelope), updated);

    let (status, _) = logger.delete("/logs").await;
    assert_eq!(status, 202);
    assert!(logger.list_logs("").await.is_empty());
    let (status, _) = logger.get(&format!("/logs/{}", created.id)).await;
    assert_eq!(status, 404);

    // The collection comes back on the next write.
    let (status, _) = logger.post("/log", json!({"name": "again"})).await;
    assert_eq!(status, 202);
    assert_eq!(logger.list_logs("").await.len(), 1);
    // Dropping an absent collection is fine too.
    for _ in 0..2 {
        let (status, _) = logger.delete("/logs").await;
        assert_eq!(status, 202);
    }
    logger.stop().await;
}

#[tokio::test]
async fn malformed_ids_are_400_and_unknown_ids_404() {
    let mut logger = spawn_logger().await;
    let unknown = "0123456789abcdef01234567";
    let (status, envelope) = logger.get("/logs/not-an-id").await;
    assert_eq!(status, 400);
    assert!(
        envelope.message.contains("malformed id"),
        "{}",
        envelope.message
    );
    let (status, envelope) = logger.get(&format!("/logs/{unknown}")).await;
    assert_eq!(status, 404);
    assert!(envelope.error);

    for (id, expected) in [("not-an-id", 400), (unknown, 404)] {
        let (status, _) = logger
            .put(&format!("/logs/{id}"), json!({"name": "x", "data": "y"}))
            .await;
        assert_eq!(status, expected, "{id}");
    }
    logger.stop().await;
}

#[tokio::test]
async fn entries_that_break_the_bounds_are_refused_and_not_stored() {
    let mut logger = spawn_logger().await;
    let long_name = "n".repeat(MAX_LOG_NAME_BYTES + 1);
    let big_data = "d".repeat(MAX_LOG_DATA_BYTES + 1);
    for body in [
        json!({"name": "", "data": "x"}),
        json!({"name": "  \t ", "data": "x"}),
        json!({"name": long_name, "data": "x"}),
        json!({"name": "event", "data": big_data}),
        json!({"data": "no name"}),
    ] {
        let (status, envelope) = logger.post("/log", body.clone()).await;
        assert_eq!(status, 400, "{body:.60}");
        assert!(envelope.error);
        assert!(envelope.message.contains("name") || envelope.message.contains("data"));
    }
    assert!(logger.list_logs("").await.is_empty(), "nothing stored");

    // The same rules hold for an update, which leaves the entry as it was.
    let (_, envelope) = logger
        .post("/log", json!({"name": "kept", "data": "x"}))
        .await;
    let kept = data::<LogEntry>(&envelope);
    let (status, envelope) = logger
        .put(
            &format!("/logs/{}", kept.id),
            json!({"name": " ", "data": "y"}),
        )
        .await;
    assert_eq!(status, 400, "{envelope:?}");
    assert_eq!(logger.list_logs("").await, [kept]);

    // Exactly at the bounds is fine.
    let (status, _) = logger
        .post(
            "/log",
            json!({"name": "n".repeat(MAX_LOG_NAME_BYTES), "data": "d".repeat(MAX_LOG_DATA_BYTES)}),
        )
        .await;
    assert_eq!(status, 202);
    logger.stop().await;
}

#[tokio::test]
async fn readiness_reports_mongodb() {
    let mut logger = spawn_logger().await;
    let (status, envelope) = logger.get("/readyz").await;
    assert_eq!(status, 200, "{envelope:?}");
    assert_eq!(envelope.data.unwrap()["mongodb"], "ok");
    let (status, _) = logger.get("/healthz").await;
    assert_eq!(status, 200);
    logger.stop().await;
}

#[tokio::test]
async fn an_entry_written_twice_with_its_id_is_stored_once() {
    let mut logger = spawn_logger().await;
    let id = test_support::new_entry_id();
    let body = json!({"name": "once", "data": "x", "id": id});
    let (status, first) = logger.post("/log", body.clone()).await;
    assert_eq!(status, 202, "{first:?}");
    let first = data::<LogEntry>(&first);
    assert_eq!(first.id, id, "the caller's id is the entry's id");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, again) = logger.post("/log", body).await;
    assert_eq!(status, 202, "a repeated write succeeds: {again:?}");
    assert_eq!(
        data::<LogEntry>(&again),
        first,
        "and answers the stored entry"
    );
    assert_eq!(logger.list_logs("").await, [first]);

    // Concurrent writes of a few ids, the same id often in one batch.
    let ids: Vec<String> = (0..5).map(|_| test_support::new_entry_id()).collect();
    let writes = (0..60).map(|n| {
        let body = json!({"name": format!("entry-{}", n % 5), "id": ids[n % 5]});
        let logger = &logger;
        async move { logger.post("/log", body).await.0 }
    });
    for status in futures::future::join_all(writes).await {
        assert_eq!(status, 202);
    }
    assert_eq!(logger.list_logs("?limit=100").await.len(), 1 + ids.len());

    let (status, envelope) = logger
        .post("/log", json!({"name": "bad", "id": "not-an-object-id"}))
        .await;
    assert_eq!(status, 400, "{envelope:?}");
    assert!(envelope.message.contains("malformed id"), "{envelope:?}");
    logger.stop().await;
}

#[tokio::test]
async fn pages_past_the_remembered_entries_and_old_entries_are_listed_in_order() {
    use mongodb::bson::{DateTime, doc};
    let mut logger = spawn_logger().await;
    // Written straight into the collection, long before the logger's
    // entries: only a listing that widens its range far enough finds them.
    let db = mongodb::Client::with_uri_str(logger.mongo.as_ref().unwrap().url())
        .await
        .unwrap()
        .database("logs");
    let day = 24 * 3600 * 1000;
    let now = DateTime::now().timestamp_millis();
    let old = [
        ("old-0", 400 * day),
        ("old-1", 400 * day - 1),
        ("week-0", 7 * day),
    ];
    for (name, age) in old {
        let at = DateTime::from_millis(now - age);
        let entry = doc! {"name": name, "data": "", "created_at": at, "updated_at": at};
        db.collection("logs").insert_one(entry).await.unwrap();
    }
    // More entries than the logger remembers the creation time of.
    let written = logger_service::newest::KEPT + 2;
    for i in 0..written {
        let (status, _) = logger
            .post("/log", json!({"name": format!("new-{i}")}))
            .await;
        assert_eq!(status, 202);
    }
    let names = |entries: Vec<LogEntry>| entries.into_iter().map(|e| e.name).collect::<Vec<_>>();
    let new = |i: usize| format!("new-{i}");
    let newest: Vec<_> = (written - 3..written).rev().map(new).collect();
    assert_eq!(names(logger.list_logs("?limit=3").await), newest);
    let mut across: Vec<_> = (0..3).rev().map(new).collect();
    across.extend(["week-0", "old-1", "old-0"].map(String::from));
    let page = format!("?limit=6&skip={}", written - 3);
    assert_eq!(names(logger.list_logs(&page).await), across);

    // A logger started again knows only the shared document's times (its
    // last ones were added to it on the way down)...
    logger.stop().await;
    logger.restart().await;
    assert_eq!(names(logger.list_logs("?limit=3").await), newest);
    assert_eq!(names(logger.list_logs(&page).await), across);
    // ...and without the document, it still finds every page.
    logger.stop().await;
    db.collection::<mongodb::bson::Document>(logger_service::newest::COLLECTION)
        .drop()
        .await
        .unwrap();
    logger.restart().await;
    assert_eq!(names(logger.list_logs("?limit=3").await), newest);
    assert_eq!(names(logger.list_logs(&page).await), across);
    let last = format!("?limit=10&skip={}", written + 2);
    assert_eq!(names(logger.list_logs(&last).await), ["old-0"]);
    logger.stop().await;
}

#[tokio::test]
async fn changing_or_dropping_entries_needs_a_token() {
    let logger = spawn_logger().await;
    let (_, envelope) = logger
        .post("/log", json!({"name": "kept", "data": "d"}))
        .await;
    let kept: LogEntry = test_support::data(&envelope);
    let anonymous = reqwest::Client::new();
    let forged = service_kit::token::TokenKey::new(b"not the logger's key, 32 bytes long")
        .unwrap()
        .issue(1, "admin@example.com", Duration::from_secs(60));
    for token in [None, Some(forged.as_str())] {
        for request in [
            anonymous.delete(logger.url("/logs")),
            anonymous
                .put(logger.url(&format!("/logs/{}", kept.id)))
                .json(&json!({"name": "changed", "data": "d"})),
        ] {
            let request = match token {
                Some(t) => request.bearer_auth(t),
                None => request,
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{token:?}");
            assert!(response.headers().contains_key("www-authenticate"));
        }
    }
    // Nothing changed; reading and writing stay open to the services.
    let (status, envelope) = logger.get(&format!("/logs/{}", kept.id)).await;
    assert_eq!(status, 200);
    assert_eq!(test_support::data::<LogEntry>(&envelope).name, "kept");
}
