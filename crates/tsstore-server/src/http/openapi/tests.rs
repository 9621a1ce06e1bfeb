//! The committed document against the one the annotations make, and
//! against the routes the router serves.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{DOCUMENT, finish, served};
use crate::limits::Limits;

fn made() -> Value {
    let text = finish(&crate::http::generated_document(), &Limits::default()).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_committed_document_is_the_one_the_handlers_make() {
    let made = made();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let mut text = serde_json::to_string_pretty(&made).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
        return;
    }
    let committed: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
    assert!(
        committed == made,
        "docs/openapi.json is not what the handlers' annotations make: \
         run UPDATE_OPENAPI=1 cargo test -p tsstore-server --lib openapi"
    );
}

#[test]
fn the_document_names_exactly_the_routes_the_router_serves() {
    let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().unwrap().keys().cloned();
            methods.map(move |m| (m, path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = crate::http::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn the_served_document_states_this_servers_limit() {
    let limits = Limits {
        max_records: 1234,
        ..Limits::default()
    };
    let doc: Value = serde_json::from_str(&served(&limits)).unwrap();
    let newest = &doc["paths"]["/api/stores/{store}/data/newest"]["get"]["parameters"];
    let limit = newest
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 1234);
}
