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

/// `GET /checkpoint`: the newest checkpoint note, as signed, with the cosignatures witnesses
/// have returned for it so far.
pub(super) async fn checkpoint(AxumState(state): AxumState<HttpState>) -> Response {
    let ledger = std::sync::Arc::clone(&state.handle.shared.ledger);
    let latest =
        tokio::task::spawn_blocking(move || match ledger.checkpoint_at_or_before(u64::MAX)? {
            Some((size, note)) => Ok(Some((
                size,
                crate::evidence::bundle::cosigned_note(&ledger, size, &note)?,
            ))),
            None => Ok::<_, crate::evidence::EvidenceError>(None),
        })
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

/// `POST /add-checkpoint` (C2SP tlog-witness): a log asks this witness to cosign its newest
/// checkpoint. The body is read up to the protocol's bound only; a longer one is refused
/// before it is stored anywhere.
pub(super) async fn add_checkpoint(
    AxumState(state): AxumState<HttpState>,
    body: axum::body::Body,
) -> Response {
    let bytes = match axum::body::to_bytes(body, crate::evidence::cosign::MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "an add-checkpoint body is at most {} bytes\n",
                    crate::evidence::cosign::MAX_REQUEST_BYTES
                ),
            )
                .into_response();
        }
    };
    let config = state.config();
    let answer =
        crate::daemon::witnessing::add_checkpoint(&state.handle.shared, &config, bytes).await;
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = answer.content_type();
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        answer.body(),
    )
        .into_response()
}

/// `GET /<hex SHA-256 of an origin>/checkpoint` (C2SP tlog-witness, monitoring): the newest
/// checkpoint this witness cosigned for that log, with the log's signature and its own.
pub(super) async fn witnessed_checkpoint(
    AxumState(state): AxumState<HttpState>,
    axum::extract::Path(origin_hash): axum::extract::Path<String>,
) -> Response {
    let Some(witness) = state.handle.shared.witness.get() else {
        return (StatusCode::NOT_FOUND, "this upledger witnesses no log\n").into_response();
    };
    let ledger = std::sync::Arc::clone(&state.handle.shared.ledger);
    let found = tokio::task::spawn_blocking(move || match witness.origin_for_hash(&origin_hash) {
        Some(origin) => witness.latest(&ledger, origin),
        None => Ok(None),
    })
    .await;
    match found {
        Ok(Ok(Some(note))) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response()
        }
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            "this witness has cosigned no checkpoint of that log\n",
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The query of `GET /log/checkpoints`.
#[derive(Debug, Deserialize)]
pub(super) struct From {
    #[serde(default)]
    from: u64,
}

/// The most checkpoints one `GET /log/checkpoints` answer lists.
const CHECKPOINTS_PER_PAGE: usize = 1000;

/// `GET /log/checkpoints?from=N`: the stored checkpoints of size N and up (at most a thousand;
/// ask again from the last size + 1), each with the witnesses' cosignatures stored for it —
/// what a client or monitor reads to see that the log's history is witnessed.
pub(super) async fn checkpoints(
    AxumState(state): AxumState<HttpState>,
    Query(from): Query<From>,
) -> Response {
    let ledger = std::sync::Arc::clone(&state.handle.shared.ledger);
    let listed = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut next = from.from;
        while out.len() < CHECKPOINTS_PER_PAGE {
            let Some((size, note)) = ledger.checkpoint_at_or_after(next)? else {
                break;
            };
            let note = crate::evidence::bundle::cosigned_note(&ledger, size, &note)?;
            out.push(serde_json::json!({ "size": size, "checkpoint": note }));
            next = size.saturating_add(1);
            if size == u64::MAX {
                break;
            }
        }
        Ok::<_, crate::evidence::EvidenceError>(out)
    })
    .await;
    match listed {
        Ok(Ok(list)) => axum::Json(serde_json::json!({ "checkpoints": list })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
