//! `upledger keygen` and the signatures made with its keys, checked by the tool clients have:
//! OpenSSH's `ssh-keygen -Y verify`; and keys and signatures made by `ssh-keygen` read by
//! upledger. These tests need `ssh-keygen` (openssh-client) and fail, naming it, without it.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
};

use upledger::evidence::{
    key::{PublicKey, REPORT_NAMESPACE, SigningKey},
    sshsig,
};

use crate::support::upledger;

/// Runs `ssh-keygen` with `args` in `dir`, `stdin` as its input; its exit code and stderr.
fn ssh_keygen(dir: &Path, args: &[&str], stdin: Option<&Path>) -> (i32, String) {
    let input = match stdin {
        Some(path) => Stdio::from(fs::File::open(path).expect("open ssh-keygen input")),
        None => Stdio::null(),
    };
    let output = Command::new("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .stdin(input)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run ssh-keygen ({e}): these tests need OpenSSH's ssh-keygen \
                 (Debian: apt-get install openssh-client)"
            )
        });
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn keygen_writes_a_key_whose_signatures_ssh_keygen_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = upledger()
        .current_dir(dir.path())
        .args(["keygen", "--identity", "ops@example.com"])
        .run_blocking();
    assert_eq!(output.code, 0, "stderr:\n{}", output.stderr);
    let key_path = dir.path().join("upledger-signing-key");
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&dir.path().join("upledger-signing-key.pub")), 0o644);

    // stdout is exactly the allowed_signers line; stderr says where things went.
    let line = output.stdout.trim_end();
    assert_eq!(output.stdout.lines().count(), 1, "{}", output.stdout);
    assert!(
        line.starts_with("ops@example.com namespaces=\"upledger-report\" ssh-ed25519 AAAA"),
        "{line}"
    );
    assert!(
        output.stderr.contains("upledger-signing-key.pub"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("[evidence]"), "{}", output.stderr);
    assert!(
        output.stderr.contains("signing_key = \""),
        "{}",
        output.stderr
    );

    let key = SigningKey::read_openssh(&key_path).expect("read the written key");
    let public = PublicKey::read_openssh(&dir.path().join("upledger-signing-key.pub"))
        .expect("read the .pub");
    assert_eq!(key.public(), public);
    assert_eq!(
        public
            .allowed_signers_line("ops@example.com")
            .expect("line"),
        line
    );

    fs::write(dir.path().join("allowed_signers"), format!("{line}\n")).expect("allowed_signers");
    let msg = dir.path().join("report.json");
    fs::write(&msg, "{\"month\":\"2026-11\",\"availability\":\"99.95\"}\n").expect("msg");
    let signature =
        sshsig::sign(&key, REPORT_NAMESPACE, &fs::read(&msg).expect("read msg")).expect("sign");
    fs::write(dir.path().join("report.json.sig"), signature).expect("write sig");
    let verify = [
        "-Y",
        "verify",
        "-f",
        "allowed_signers",
        "-I",
        "ops@example.com",
        "-n",
        REPORT_NAMESPACE,
        "-s",
        "report.json.sig",
    ];
    let (code, stderr) = ssh_keygen(dir.path(), &verify, Some(&msg));
    assert_eq!(
        code, 0,
        "ssh-keygen -Y verify refused our signature: {stderr}"
    );

    // One changed byte of the message: ssh-keygen says no (255).
    let mut changed = fs::read(&msg).expect("read msg");
    changed[30] ^= 1;
    fs::write(&msg, changed).expect("change msg");
    let (code, stderr) = ssh_keygen(dir.path(), &verify, Some(&msg));
    assert_eq!(code, 255, "ssh-keygen accepted a changed message: {stderr}");

    // Another identity, or the namespace the allowed_signers line does not allow: refused.
    fs::write(&msg, "{\"month\":\"2026-11\",\"availability\":\"99.95\"}\n").expect("msg");
    let mut other_identity = verify;
    other_identity[5] = "someone@example.com";
    assert_eq!(ssh_keygen(dir.path(), &other_identity, Some(&msg)).0, 255);
}

#[test]
fn keys_and_signatures_made_by_ssh_keygen_work_with_upledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = ssh_keygen(
        dir.path(),
        &["-q", "-t", "ed25519", "-N", "", "-C", "k@test", "-f", "K"],
        None,
    );
    assert_eq!(code, 0, "ssh-keygen -t ed25519: {stderr}");
    let key = SigningKey::read_openssh(&dir.path().join("K")).expect("read ssh-keygen's key");
    let public = PublicKey::read_openssh(&dir.path().join("K.pub")).expect("read K.pub");
    assert_eq!(key.public(), public);

    let msg = dir.path().join("msg");
    fs::write(&msg, b"a report\n").expect("msg");
    let (code, stderr) = ssh_keygen(
        dir.path(),
        &["-Y", "sign", "-f", "K", "-n", REPORT_NAMESPACE, "msg"],
        None,
    );
    assert_eq!(code, 0, "ssh-keygen -Y sign: {stderr}");
    let armored = fs::read_to_string(dir.path().join("msg.sig")).expect("msg.sig");
    sshsig::verify(&public, REPORT_NAMESPACE, b"a report\n", &armored)
        .expect("ssh-keygen's signature verifies");
    assert!(sshsig::verify(&public, REPORT_NAMESPACE, b"a report!\n", &armored).is_err());
    assert!(sshsig::verify(&public, "file", b"a report\n", &armored).is_err());
    // And our signature with ssh-keygen's key is ssh-keygen's, byte for byte (Ed25519 is
    // deterministic).
    assert_eq!(
        sshsig::sign(&key, REPORT_NAMESPACE, b"a report\n").expect("sign"),
        armored
    );
}

#[test]
fn passphrase_protected_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = ssh_keygen(
        dir.path(),
        &["-q", "-t", "ed25519", "-N", "secret", "-f", "E"],
        None,
    );
    assert_eq!(code, 0, "ssh-keygen: {stderr}");
    let error = SigningKey::read_openssh(&dir.path().join("E"))
        .expect_err("encrypted key")
        .to_string();
    assert!(
        error.starts_with("passphrase-protected keys are not supported: "),
        "{error}"
    );
}

#[test]
fn keygen_refuses_to_overwrite_and_force_replaces_after_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[&str]| {
        upledger()
            .current_dir(dir.path())
            .args(["keygen", "--out", "k", "--identity", "me@test"])
            .args(extra)
            .run_blocking()
    };
    let first = run(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let read_both = || {
        (
            fs::read(dir.path().join("k")).expect("k"),
            fs::read(dir.path().join("k.pub")).expect("k.pub"),
        )
    };
    let written = read_both();
    let again = run(&[]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert!(again.stdout.is_empty());
    assert!(read_both() == written, "the refused run left the key alone");

    let forced = run(&["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced.stderr.contains("replacing the existing k"),
        "{}",
        forced.stderr
    );
    assert_ne!(forced.stdout, first.stdout, "a new key");
    assert_eq!(mode(&dir.path().join("k")), 0o600);

    let bad = upledger()
        .current_dir(dir.path())
        .args(["keygen", "--out", "k", "--force", "--identity", "two words"])
        .run_blocking();
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("whitespace"), "{}", bad.stderr);
    let kept = SigningKey::read_openssh(&dir.path().join("k")).expect("key kept");
    assert!(forced.stdout.contains(&kept.public().to_openssh()));
}

#[test]
fn keygen_default_identity_names_the_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = upledger()
        .current_dir(dir.path())
        .args(["keygen", "--out", "nested-missing/k"])
        .run_blocking();
    assert_eq!(output.code, 2, "no such directory");
    assert!(
        output.stderr.contains("nested-missing/k"),
        "{}",
        output.stderr
    );

    let output = upledger()
        .current_dir(dir.path())
        .arg("keygen")
        .run_blocking();
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.starts_with("upledger@"), "{}", output.stdout);
    assert!(
        !output.stdout.starts_with("upledger@ "),
        "{}",
        output.stdout
    );
}
