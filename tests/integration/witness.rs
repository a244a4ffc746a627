//! Witnesses (SPEC §9, C2SP tlog-witness and tlog-cosignature), end to end with real daemons
//! on loopback: a vendor's log daemon sends every checkpoint to a client's upledger running as
//! a witness; the bundle carries the cosignatures and `verify --witness-key --quorum` checks
//! them. A log replaced by a forked copy is refused and raises `log_fork` once; a witness that
//! is down for a while gets every checkpoint after it comes back, and says `log_silent` once;
//! bad requests get the protocol's status codes and change nothing.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use jiff::Timestamp;
use upledger::evidence::{
    cosign::AddCheckpoint,
    key::SigningKey,
    merkle::{self, MemoryTree},
    note::{Checkpoint, sign_note},
};

use crate::support::{
    Output, TestConfig, copy_dir, daemon::Daemon, free_port, keygen, public, tcp, upledger,
    webhook::Receiver,
};

const ORIGIN: &str = "status.example.test/upledger";
const WITNESS: &str = "client.example.test/witness";

fn public_line(key: &Path) -> String {
    std::fs::read_to_string(public(key))
        .expect("read .pub")
        .trim()
        .to_owned()
}

/// The vendor's main file: a log with 2-second leaf hours sending to one witness.
fn log_main(key: &Path, port: u16, witness_port: u16, witness_key: &Path) -> String {
    format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\
         listen = \"127.0.0.1:{port}\"\n\n[evidence]\nsigning_key = \"{}\"\n\
         origin = \"{ORIGIN}\"\nhour = \"2s\"\n\
         witnesses = [{{ url = \"http://127.0.0.1:{witness_port}\", key = \"{}\" }}]\n",
        key.display(),
        public_line(witness_key)
    )
}

/// The client's main file: a witness of the vendor's log, alerting to `hook`.
fn witness_main(key: &Path, port: u16, vendor_key: &Path, silence: &str, hook: &str) -> String {
    format!(
        "[daemon]\nledger = \"data/ledger\"\nsocket = \"data/upledger.sock\"\n\
         listen = \"127.0.0.1:{port}\"\n\n[evidence]\nsigning_key = \"{}\"\n\
         origin = \"{WITNESS}\"\n\n\
         [witness]\nname = \"{WITNESS}\"\nsilence = \"{silence}\"\n\
         logs = [{{ origin = \"{ORIGIN}\", key = \"{}\" }}]\n\n\
         [[channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{hook}\"\n\
         events = [\"log_fork\", \"log_silent\"]\n",
        key.display(),
        public_line(vendor_key)
    )
}

fn tcp_probe(port: u16) -> String {
    format!(
        "[[probe]]\nname = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         interval = \"250ms\"\ntimeout = \"200ms\"\n"
    )
}

async fn verify(dir: &Path, extra: &[&str]) -> Output {
    upledger()
        .arg("verify")
        .arg(dir)
        .args(extra.iter().copied())
        .run()
        .await
}

/// `upledger evidence` for this month into `out`.
async fn evidence(daemon: &Daemon, out: &Path) {
    let month = Timestamp::now().strftime("%Y-%m").to_string();
    let output = daemon
        .cli(&[
            "evidence",
            "--month",
            &month,
            "--out",
            &out.display().to_string(),
        ])
        .await;
    assert_eq!(output.code, 0, "evidence: {}", output.stderr);
}

/// Every stored checkpoint of the log listening on `port`: size and note (with cosignatures).
async fn checkpoints(port: u16) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let page: serde_json::Value = reqwest::get(format!(
            "http://127.0.0.1:{port}/log/checkpoints?from={from}"
        ))
        .await
        .expect("GET /log/checkpoints")
        .text()
        .await
        .map(|body| serde_json::from_str(&body).expect("json"))
        .expect("body");
        let list = page["checkpoints"].as_array().expect("a list").clone();
        if list.is_empty() {
            return out;
        }
        for item in list {
            let size = item["size"].as_u64().expect("size");
            out.push((size, item["checkpoint"].as_str().expect("note").to_owned()));
            from = size + 1;
        }
    }
}

/// The size of the newest checkpoint the witness on `port` cosigned for the vendor's log.
async fn witnessed_size(port: u16) -> u64 {
    let note = reqwest::get(format!(
        "http://127.0.0.1:{port}/{}/checkpoint",
        origin_hash()
    ))
    .await
    .expect("GET witness checkpoint")
    .text()
    .await
    .expect("body");
    note.lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .unwrap_or_else(|| panic!("a checkpoint: {note}"))
}

fn origin_hash() -> String {
    upledger::evidence::witness::origin_hash(ORIGIN)
}

fn cosigned_by_witness(note: &str) -> bool {
    note.contains(&format!("\u{2014} {WITNESS} "))
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn events_of(hook: &Receiver, kind: &str) -> Vec<serde_json::Value> {
    hook.received()
        .iter()
        .map(|r| r.json())
        .filter(|event| event["event"] == kind)
        .collect()
}

/// A vendor's log and a client's witness, configured for each other (neither started): the
/// log probes a loopback target `up` and sends its checkpoints to the witness, which alerts
/// `hook` and calls the log silent after `silence`.
struct Setup {
    up: tcp::TestTcp,
    hook: Receiver,
    vendor: TestConfig,
    client: TestConfig,
    vendor_key: PathBuf,
    witness_key: PathBuf,
    log_port: u16,
    witness_port: u16,
}

impl Setup {
    async fn new(silence: &str) -> Setup {
        let up = tcp::pong().await;
        let hook = Receiver::start().await;
        let vendor = TestConfig::new();
        let client = TestConfig::new();
        let vendor_key = keygen(vendor.dir(), "vendor-key", "vendor-key").await;
        let witness_key = keygen(client.dir(), "witness-key", "witness-key").await;
        let (log_port, witness_port) = (free_port(), free_port());
        client.main(&witness_main(
            &witness_key,
            witness_port,
            &vendor_key,
            silence,
            &hook.url(),
        ));
        vendor.main(&log_main(&vendor_key, log_port, witness_port, &witness_key));
        vendor.probes("p.toml", &tcp_probe(up.port()));
        Setup {
            up,
            hook,
            vendor,
            client,
            vendor_key,
            witness_key,
            log_port,
            witness_port,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_are_cosigned_and_a_forked_log_is_refused() {
    let Setup {
        up,
        hook,
        vendor,
        client,
        vendor_key,
        witness_key,
        log_port,
        witness_port,
    } = Setup::new("1h").await;
    // The client's upledger probes the vendor's endpoint itself, too.
    client.probes("p.toml", &tcp_probe(up.port()));
    let witness = Daemon::start(&client.main_path()).await;

    // 1. Checkpoints get cosigned; the bundle verifies with a quorum of one.
    let log = Daemon::start(&vendor.main_path()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let honest = vendor.dir().join("honest");
    evidence(&log, &honest).await;
    let vendor_pub = public(&vendor_key).display().to_string();
    let witness_pub = public(&witness_key).display().to_string();
    let checked = verify(
        &honest,
        &[
            "--key",
            &vendor_pub,
            "--witness-key",
            &witness_pub,
            "--quorum",
            "1",
        ],
    )
    .await;
    assert_eq!(
        checked.code,
        0,
        "{}\n{}\nlog:\n{}",
        checked.stdout,
        checked.stderr,
        log.log()
    );
    assert!(
        checked.stdout.contains("witnesses: 1 of 1 given cosigned"),
        "{}",
        checked.stdout
    );
    // Without the witness, the same bundle is valid but no witness is claimed.
    assert_eq!(verify(&honest, &["--key", &vendor_pub]).await.code, 0);
    // The witness serves what it cosigned (C2SP monitoring prefix).
    let origin_hash = origin_hash();
    let seen = reqwest::get(format!(
        "http://127.0.0.1:{witness_port}/{origin_hash}/checkpoint"
    ))
    .await
    .expect("GET witness checkpoint");
    assert_eq!(seen.status(), 200);
    let seen = seen.text().await.expect("body");
    assert!(
        seen.starts_with(&format!("{ORIGIN}\n")) && cosigned_by_witness(&seen),
        "{seen}"
    );

    // Both sides show it in /metrics.
    let metrics = |port: u16| async move {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("body")
    };
    let gauge = |text: &str, series: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let log_metrics = metrics(log_port).await;
    let cosigned = gauge(
        &log_metrics,
        &format!("upledger_witness_cosigned_size{{witness=\"http://127.0.0.1:{witness_port}/\"}}"),
    );
    assert!(cosigned > 0 && cosigned <= gauge(&log_metrics, "upledger_checkpoint_size"));
    let held = gauge(
        &metrics(witness_port).await,
        &format!("upledger_witnessed_log_size{{log=\"{ORIGIN}\"}}"),
    );
    assert!(held >= cosigned, "{held} {cosigned}");

    // 2. A forked copy: the ledger as it was now, later given a different history.
    assert_eq!(log.terminate().await, 0);
    let ledger = vendor.dir().join("data/ledger");
    let fork = vendor.dir().join("data/fork");
    copy_dir(&ledger, &fork);
    // The honest log goes on (the witness cosigns its growth)...
    let log = Daemon::start(&vendor.main_path()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let honest_sizes = checkpoints(log_port).await;
    assert!(
        honest_sizes
            .iter()
            .filter(|(_, n)| cosigned_by_witness(n))
            .count()
            >= 2,
        "the honest log is cosigned as it grows"
    );
    // A consistency proof from a power-of-two size does not carry the old root, so a fork
    // seen through one is refused but cannot be told from a bad proof (see the README): let
    // the honest log grow until the witness holds another size.
    loop {
        let held = witnessed_size(witness_port).await;
        if !held.is_power_of_two() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(log.terminate().await, 0);
    // ...then its ledger is replaced by the copy, where the target was down all along.
    std::fs::rename(&ledger, vendor.dir().join("data/honest")).expect("move the honest ledger");
    std::fs::rename(&fork, &ledger).expect("put the fork in place");
    vendor.probes("p.toml", &tcp_probe(free_port()));
    let forked = Daemon::start(&vendor.main_path()).await;
    eventually(Duration::from_secs(30), "log_fork raised", || async {
        !events_of(&hook, "log_fork").is_empty()
    })
    .await;
    // The forked log keeps trying with new checkpoints: refused, and not alerted again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let forks = events_of(&hook, "log_fork");
    assert_eq!(forks.len(), 1, "log_fork once: {forks:?}");
    assert_eq!(forks[0]["log"], ORIGIN);
    assert!(
        forks[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("FORKED")),
        "{}",
        forks[0]
    );
    assert!(
        forked.log().contains("refused"),
        "the forked log says the witness refused: {}",
        forked.log()
    );
    let forked_bundle = vendor.dir().join("forked");
    evidence(&forked, &forked_bundle).await;
    // Valid on its own (the vendor signed it)...
    assert_eq!(
        verify(&forked_bundle, &["--key", &vendor_pub]).await.code,
        0
    );
    // ...but no witness vouches for it.
    let caught = verify(
        &forked_bundle,
        &[
            "--key",
            &vendor_pub,
            "--witness-key",
            &witness_pub,
            "--quorum",
            "1",
        ],
    )
    .await;
    assert_eq!(caught.code, 1, "{}\n{}", caught.stdout, caught.stderr);
    assert!(
        caught.stdout.contains("no cosignature by") && caught.stdout.contains("--quorum 1"),
        "{}",
        caught.stdout
    );
    assert!(witness.log().contains("forked"), "{}", witness.log());
    assert_eq!(forked.terminate().await, 0);
    assert_eq!(witness.terminate().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_witness_that_was_down_gets_every_checkpoint_and_says_the_log_was_silent() {
    let Setup {
        up: _up,
        hook,
        vendor,
        client,
        vendor_key,
        witness_key,
        log_port,
        witness_port,
    } = Setup::new("3s").await;
    let witness = Daemon::start(&client.main_path()).await;
    let log = Daemon::start(&vendor.main_path()).await;
    eventually(Duration::from_secs(20), "a first cosignature", || async {
        checkpoints(log_port)
            .await
            .iter()
            .any(|(_, note)| cosigned_by_witness(note))
    })
    .await;
    let first_cosigned = checkpoints(log_port)
        .await
        .into_iter()
        .find(|(_, note)| cosigned_by_witness(note))
        .map(|(size, _)| size)
        .expect("cosigned");
    assert!(
        events_of(&hook, "log_silent").is_empty(),
        "the log talks: not silent"
    );

    // The witness is down for longer than its silence; the log signs on meanwhile, and
    // announces a maintenance window starting two seconds later: its log says it was seen
    // in time, but no witness saw it before it began.
    assert_eq!(witness.terminate().await, 0);
    let down_at = checkpoints(log_port).await.last().map_or(0, |(s, _)| *s);
    let start = Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let end = start + jiff::SignedDuration::from_secs(600);
    vendor.main(&format!(
        "{}\n[[maintenance]]\nprobes = [\"api\"]\nstart = \"{start}\"\nend = \"{end}\"\n\
         reason = \"announced while the witness was down\"\n",
        log_main(&vendor_key, log_port, witness_port, &witness_key)
    ));
    log.signal("HUP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during: Vec<u64> = checkpoints(log_port)
        .await
        .into_iter()
        .filter(|(size, note)| *size > down_at && !cosigned_by_witness(note))
        .map(|(size, _)| size)
        .collect();
    assert!(
        during.len() >= 2,
        "checkpoints were signed while the witness was down: {during:?}"
    );
    let witness = Daemon::start(&client.main_path()).await;
    // Every checkpoint from the first cosigned one on is cosigned, none skipped.
    eventually(
        Duration::from_secs(30),
        "every checkpoint cosigned",
        || async {
            let all = checkpoints(log_port).await;
            let newest = all.last().map_or(0, |(s, _)| *s);
            all.iter()
                .filter(|(size, _)| *size >= first_cosigned && *size < newest)
                .all(|(_, note)| cosigned_by_witness(note))
                && during.iter().all(|size| {
                    all.iter()
                        .any(|(s, note)| s == size && cosigned_by_witness(note))
                })
        },
    )
    .await;
    // Silent once, then back.
    eventually(Duration::from_secs(20), "log_silent delivered", || async {
        events_of(&hook, "log_silent").len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let silent = events_of(&hook, "log_silent");
    let down: Vec<_> = silent.iter().filter(|e| e["state"] == "down").collect();
    let back: Vec<_> = silent.iter().filter(|e| e["state"] == "up").collect();
    assert_eq!(down.len(), 1, "log_silent once: {silent:?}");
    assert_eq!(back.len(), 1, "and once back: {silent:?}");
    assert_eq!(down[0]["log"], ORIGIN);

    // The vendor's report counts the window (its log saw it before the start); a client
    // who trusts only what the witness saw does not, and says which window.
    let bundle = vendor.dir().join("bundle");
    evidence(&log, &bundle).await;
    let vendor_pub = public(&vendor_key).display().to_string();
    let witness_pub = public(&witness_key).display().to_string();
    let alone = verify(&bundle, &["--key", &vendor_pub]).await;
    assert_eq!(alone.code, 0, "{}", alone.stdout);
    let witnessed = verify(
        &bundle,
        &["--key", &vendor_pub, "--witness-key", &witness_pub],
    )
    .await;
    assert_eq!(
        witnessed.code, 1,
        "{}\n{}",
        witnessed.stdout, witnessed.stderr
    );
    assert!(
        witnessed.stdout.contains("maintenance")
            && witnessed.stdout.contains("maintenance window once")
            && witnessed
                .stdout
                .contains("cosigned by 1 witness(es) only at"),
        "{}",
        witnessed.stdout
    );
    assert_eq!(log.terminate().await, 0);
    assert_eq!(witness.terminate().await, 0);
}

/// A signed checkpoint of `tree` by `key` as log `origin`.
fn signed(tree: &MemoryTree, origin: &str, key: &SigningKey) -> String {
    let body = Checkpoint {
        origin: origin.to_owned(),
        size: tree.size(),
        root: tree.root(),
        extensions: Vec::new(),
    }
    .body();
    sign_note(&body, origin, key).expect("sign")
}

async fn post(port: u16, body: impl Into<reqwest::Body>) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .expect("POST /add-checkpoint");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_add_checkpoint_requests_get_their_status_and_change_nothing() {
    let hook = Receiver::start().await;
    let client = TestConfig::new();
    let witness_key = keygen(client.dir(), "witness-key", "witness-key").await;
    // The log is played by the test: a key whose public half the witness trusts.
    let log_key = SigningKey::from_seed(&[7; 32], ORIGIN).expect("key");
    let log_pub = client.dir().join("log-key.pub");
    std::fs::write(&log_pub, format!("{}\n", log_key.public().to_openssh())).expect("write");
    let stranger = SigningKey::from_seed(&[9; 32], "stranger").expect("key");
    let port = free_port();
    let mut main = witness_main(&witness_key, port, &witness_key, "1h", &hook.url());
    main = main.replace(&public_line(&witness_key), &log_key.public().to_openssh());
    client.main(&main);
    let witness = Daemon::start(&client.main_path()).await;

    let mut tree = MemoryTree::new();
    for i in 0..10u8 {
        tree.push(&[i]);
    }
    let first = signed(&tree, ORIGIN, &log_key);
    let request = |old: u64, proof: Vec<merkle::Hash>, note: &str| {
        AddCheckpoint {
            old,
            proof,
            note: note.to_owned(),
        }
        .render()
    };

    // Garbage, a proof line that is not a hash, a body of 1 MiB, an unknown origin, a
    // signature by a stranger, a tampered signature, old > size: refused.
    assert_eq!(post(port, "hello\n").await.0, 400);
    assert_eq!(
        post(port, format!("old 0\nnot-base64!\n\n{first}")).await.0,
        400
    );
    assert_eq!(post(port, vec![b'a'; 1 << 20]).await.0, 413);
    assert_eq!(
        post(
            port,
            request(0, Vec::new(), &signed(&tree, "other.example/log", &log_key))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post(
            port,
            request(0, Vec::new(), &signed(&tree, ORIGIN, &stranger))
        )
        .await
        .0,
        403
    );
    let tampered = first.replacen(&format!("\n{}\n", tree.size()), "\n11\n", 1);
    assert_eq!(post(port, request(0, Vec::new(), &tampered)).await.0, 403);
    assert_eq!(post(port, request(11, Vec::new(), &first)).await.0, 400);
    // Nothing was stored: the witness has cosigned nothing for the log.
    let origin_hash = origin_hash();
    let none = reqwest::get(format!("http://127.0.0.1:{port}/{origin_hash}/checkpoint"))
        .await
        .expect("GET");
    assert_eq!(none.status(), 404);

    // The first checkpoint is cosigned; a proof line with old 0 is not allowed.
    let (status, _) = post(port, request(0, vec![[0; 32]], &first)).await;
    assert_eq!(status, 422);
    let (status, cosignature) = post(port, request(0, Vec::new(), &first)).await;
    assert_eq!(status, 200, "{cosignature}");
    assert!(
        cosignature.starts_with(&format!("\u{2014} {WITNESS} ")),
        "{cosignature}"
    );

    // Stale old size: 409 with the size held.
    for i in 10..20u8 {
        tree.push(&[i]);
    }
    let second = signed(&tree, ORIGIN, &log_key);
    let (status, body) = post(port, request(0, Vec::new(), &second)).await;
    assert_eq!((status, body.as_str()), (409, "10\n"));
    // A wrong proof: 422, and the witness still holds size 10.
    let wrong = vec![[1u8; 32]; 3];
    assert_eq!(post(port, request(10, wrong, &second)).await.0, 422);
    let (status, body) = post(port, request(0, Vec::new(), &second)).await;
    assert_eq!((status, body.as_str()), (409, "10\n"));
    // The right proof: cosigned.
    let proof = merkle::consistency_proof(10, 20, &tree).expect("proof");
    let (status, body) = post(port, request(10, proof, &second)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        witness.log().contains("daemon started"),
        "the witness is still running"
    );
    let status = witness.cli(&["status", "--json"]).await;
    assert_eq!(status.json()["daemon_running"], true);
    assert_eq!(witness.terminate().await, 0);
}
