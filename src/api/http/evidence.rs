//! `GET /checkpoint` and `GET /log/consistency` (SPEC §8): what a client or a witness needs to
//! follow the evidence log between bundles — the newest signed checkpoint, and a proof that a
//! checkpoint they hold is a prefix of a newer one. Both read the ledger off the async
//! threads; neither shows anything but hashes and the log's size.

use axum::{
    extract::{Query, State as AxumState},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{HttpState, error};

/// `GET /checkpoint`: the newest checkpoint note, as signed.
pub(super) async fn checkpoint(AxumState(state): AxumState<HttpState>) -> Response {
    let ledger = std::sync::Arc::clone(&state.handle.shared.ledger);
    let latest = tokio::task::spawn_blocking(move || ledger.checkpoint_at_or_before(u64::MAX))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match latest {
        Ok(Some((_, note))) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "the evidence log has no checkpoint yet",
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The query of `GET /log/consistency`.
#[derive(Debug, Deserialize)]
pub(super) struct Sizes {
    old: u64,
    new: u64,
}

/// `GET /log/consistency?old=N&new=M`: the RFC 9162 consistency proof between the trees of
/// sizes N and M, base64 hashes.
pub(super) async fn consistency(
    AxumState(state): AxumState<HttpState>,
    Query(sizes): Query<Sizes>,
) -> Response {
    let ledger = std::sync::Arc::clone(&state.handle.shared.ledger);
    let Sizes { old, new } = sizes;
    let proof = tokio::task::spawn_blocking(move || {
        crate::evidence::bundle::consistency(&ledger, old, new)
    })
    .await;
    match proof {
        Ok(Ok(proof)) => axum::Json(serde_json::json!({
            "old": old,
            "new": new,
            "proof": proof,
        }))
        .into_response(),
        Ok(Err(e @ crate::evidence::EvidenceError::Request(_))) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
