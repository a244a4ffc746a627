//! Finding and loading the configuration: main file, then every `probes.d/*.toml`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use toml::de::DeTable;

use super::{
    ConfigError,
    main_file::{self, MAIN_KEYS},
    probe::{default_keys, read_probe},
    reader::{Ctx, Reporter, Section, process_env},
    source::SourceFile,
    spec::{Config, relative_to},
};

/// The system-wide config path, used when nothing else is given or found.
pub const SYSTEM_CONFIG: &str = "/etc/upledger/upledger.toml";

/// Picks the main config file: `--config`, else `$UPLEDGER_CONFIG`, else `./upledger.toml`,
/// else [`SYSTEM_CONFIG`] (SPEC §1).
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_owned();
    }
    if let Some(path) = std::env::var_os("UPLEDGER_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let local = PathBuf::from("upledger.toml");
    if local.exists() {
        local
    } else {
        PathBuf::from(SYSTEM_CONFIG)
    }
}

/// The admin socket path from the main file alone, read leniently: the query commands need only
/// this to reach a running daemon, even while probe files are being edited and invalid.
pub fn socket_path(main: &Path) -> PathBuf {
    let default = PathBuf::from("/run/upledger/upledger.sock");
    let Ok(text) = std::fs::read_to_string(main) else {
        return default;
    };
    let Ok(table) = DeTable::parse(&text) else {
        return default;
    };
    table
        .get_ref()
        .get("daemon")
        .and_then(|daemon| daemon.get_ref().as_table())
        .and_then(|daemon| daemon.get("socket"))
        .and_then(|socket| socket.get_ref().as_str())
        .and_then(|socket| super::reader::expand_env(socket, &process_env).ok())
        .map_or(default, |socket| relative_to(main, Path::new(&socket)))
}

/// Loads and validates the configuration rooted at `main`, reporting every problem at once.
pub fn load(main: &Path) -> Result<Config, ConfigError> {
    load_with_env(main, &process_env)
}

/// [`load`] with an injected environment for `${VAR}` expansion.
pub(crate) fn load_with_env(
    main: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let main_text = read(main)?;
    let main_source = SourceFile::new(0, main.to_owned(), main_text);
    let mut reporter = Reporter::default();

    let main_table = parse(&main_source, &mut reporter);
    let section = |key: &str| -> Option<Section<'_>> {
        let (_, value) = main_table.as_ref()?.get_key_value(key)?;
        Some(Section {
            file: &main_source,
            table: value.get_ref().as_table()?,
            span: value.span(),
        })
    };
    let array =
        |key: &str| -> Vec<Section<'_>> { array_of_tables(&main_source, main_table.as_ref(), key) };

    let mut ctx = Ctx::new(&mut reporter, None, env);
    if let Some(table) = &main_table {
        let top = Section {
            file: &main_source,
            table,
            span: 0..0,
        };
        top.reject_unknown_keys(&mut ctx, MAIN_KEYS, "the main config");
        check_section_shapes(&mut ctx, &top);
    }
    let daemon = {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), Some("[daemon]".into()), env);
        main_file::read_daemon(&mut ctx, section("daemon"), main)
    };
    let evidence = {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), Some("[evidence]".into()), env);
        main_file::read_evidence(&mut ctx, section("evidence"), main)
    };
    let witness = {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), Some("[witness]".into()), env);
        main_file::read_witness(&mut ctx, section("witness"), main, &evidence)
    };
    let replication = {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), Some("[replication]".into()), env);
        super::replication::read_replication(&mut ctx, section("replication"), main)
    };
    let page = {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), Some("[page]".into()), env);
        super::page::read_page(&mut ctx, section("page"), main)
    };
    let defaults = section("defaults");
    if let Some(defaults) = &defaults {
        defaults.reject_unknown_keys(&mut ctx, &default_keys(), "[defaults]");
    }
    let mut channels = Vec::new();
    for channel in array("channel") {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), None, env);
        channels.extend(main_file::read_channel(&mut ctx, channel, main));
    }
    let mut slas = Vec::new();
    for sla in array("sla") {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), None, env);
        slas.extend(main_file::read_sla(&mut ctx, sla));
    }
    let mut maintenance = Vec::new();
    for window in array("maintenance") {
        let mut ctx = Ctx::new(ctx_reporter(&mut ctx), Some("[[maintenance]]".into()), env);
        maintenance.extend(main_file::read_maintenance(&mut ctx, window));
    }
    drop(ctx);

    // Channel names must be unique. Probes may name any declared channel, even one with
    // errors of its own, so one mistake is not reported again at every probe using it.
    let mut channel_names: Vec<&str> = Vec::new();
    for channel in array("channel") {
        let Some(item) = channel.get("name") else {
            continue;
        };
        let Some(name) = item.raw().as_str() else {
            continue;
        };
        if channel_names.contains(&name) {
            reporter.error(
                &main_source,
                &item.span(),
                Some(&format!("channel \"{name}\"")),
                "duplicate channel name",
            );
        } else {
            channel_names.push(name);
        }
    }
    // An SLA's `report_to` names channels the same way (SPEC §10).
    for sla in array("sla") {
        let name = sla.get("name").and_then(|item| item.raw().as_str());
        let context = name.map(|name| format!("sla \"{name}\""));
        let mut ctx = Ctx::new(&mut reporter, context, env);
        main_file::check_report_to(&mut ctx, &sla, &channel_names);
    }

    // Probe files, in name order so load order (and error order) is stable. Each file is
    // parsed in parts of a few dozen `[[probe]]` tables: a spanned parse tree costs about a
    // kilobyte per table, and parsing 10,000 at once would leave that much heap behind.
    let mut probes = Vec::new();
    let mut first_seen: HashMap<String, (PathBuf, usize, usize)> = HashMap::new();
    for (i, path) in list_probe_files(&daemon.probes_dir)?
        .into_iter()
        .enumerate()
    {
        let text = read(&path)?;
        for part in split_probe_file(&text, TABLES_PER_PART) {
            let source = SourceFile::part(
                i + 1,
                path.clone(),
                text[part.bytes].to_owned(),
                part.first_line,
            );
            let Some(table) = parse(&source, &mut reporter) else {
                continue;
            };
            let mut ctx = Ctx::new(&mut reporter, None, env);
            let top = Section {
                file: &source,
                table: &table,
                span: 0..0,
            };
            top.reject_unknown_keys(
                &mut ctx,
                &["probe"],
                "a probe file (probes are [[probe]] tables)",
            );
            check_section_shapes(&mut ctx, &top);
            for probe in array_of_tables(&source, Some(&table), "probe") {
                let mut ctx = Ctx::new(&mut reporter, None, env);
                let name_item = probe.get("name");
                let spec = read_probe(&mut ctx, probe, defaults.clone(), &channel_names);
                // Duplicate names are checked even for otherwise invalid probes.
                if let Some((item, name)) = name_item.and_then(|i| Some((i, i.raw().as_str()?))) {
                    let (line, column) = source.position(&item.span());
                    match first_seen.get(name) {
                        Some((file, first_line, first_column)) => reporter.error(
                            &source,
                            &item.span(),
                            Some(&format!("probe \"{name}\"")),
                            format!(
                                "duplicate probe name; first defined at {}:{first_line}:{first_column}",
                                file.display()
                            ),
                        ),
                        None => {
                            first_seen.insert(name.to_owned(), (source.path().to_owned(), line, column));
                        }
                    }
                }
                if let Some(spec) = spec {
                    probes.push(spec);
                }
            }
        }
    }

    let sentinel_item = section("daemon").and_then(|d| d.get("sentinel"));
    if let (Some(sentinel), Some(item)) = (&daemon.sentinel, sentinel_item)
        && !first_seen.contains_key(sentinel.as_str())
    {
        reporter.error(
            &main_source,
            &item.span(),
            Some("[daemon]"),
            format!("sentinel: no probe is named \"{sentinel}\""),
        );
    }
    let all_names: Vec<&str> = first_seen.keys().map(String::as_str).collect();
    let unmatched = |pattern: &str| {
        !all_names
            .iter()
            .any(|n| crate::model::glob_match(pattern, n))
    };
    for (what, sections) in [
        ("sla", array("sla")),
        ("[[maintenance]]", array("maintenance")),
    ] {
        for section in sections {
            let Some(item) = section.get("probes") else {
                continue;
            };
            let patterns: Vec<&str> = match item.raw() {
                toml::de::DeValue::String(s) => vec![s.as_ref()],
                toml::de::DeValue::Array(a) => {
                    a.iter().filter_map(|v| v.get_ref().as_str()).collect()
                }
                _ => continue,
            };
            let context = match (what, section.get("name").and_then(|n| n.raw().as_str())) {
                ("sla", Some(name)) => format!("sla \"{name}\""),
                _ => what.to_owned(),
            };
            for pattern in patterns.into_iter().filter(|p| unmatched(p)) {
                reporter.error(
                    &main_source,
                    &item.span(),
                    Some(&context),
                    format!("probes: \"{pattern}\" matches no probe"),
                );
            }
        }
    }

    let warnings = reporter.take_warnings();
    if !reporter.is_empty() {
        return Err(ConfigError::Invalid(reporter.into_diagnostics()));
    }
    // Kept for the daemon's lifetime: no spare capacity (a ProbeSpec is half a kilobyte).
    probes.shrink_to_fit();
    Ok(Config::new(
        main.to_owned(),
        daemon,
        probes,
        channels,
        slas,
        maintenance,
        evidence,
    )
    .with_witness(witness)
    .with_replication(replication)
    .with_page(page)
    .with_warnings(warnings))
}

/// `[[probe]]` tables parsed together; see [`split_probe_file`].
const TABLES_PER_PART: usize = 64;

/// A slice of a probe file that parses on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    bytes: std::ops::Range<usize>,
    /// 1-based line of the part's first byte in the whole file.
    first_line: usize,
}

/// Splits a probe file before every `per_part`-th `[[probe]]` header line, so each part is a
/// self-contained document. Lines inside multi-line strings are never taken for headers.
fn split_probe_file(text: &str, per_part: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut headers_in_part = 0;
    let mut open_string: Option<&str> = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let is_header = open_string.is_none() && {
            let code = line.split('#').next().unwrap_or("").trim();
            code.replace(' ', "") == "[[probe]]"
        };
        if is_header {
            if headers_in_part == per_part {
                parts.push(Part {
                    bytes: start..offset,
                    first_line: start_line,
                });
                start = offset;
                start_line = index + 1;
                headers_in_part = 0;
            }
            headers_in_part += 1;
        }
        for delimiter in ["\"\"\"", "'''"] {
            let count = line.matches(delimiter).count();
            if count % 2 == 1 {
                open_string = match open_string {
                    None => Some(delimiter),
                    Some(open) if open == delimiter => None,
                    other => other,
                };
            }
        }
        offset += line.len();
    }
    parts.push(Part {
        bytes: start..text.len(),
        first_line: start_line,
    });
    parts
}

/// Reborrows the reporter behind a context, to report under another context for a while.
fn ctx_reporter<'a>(ctx: &'a mut Ctx<'_>) -> &'a mut Reporter {
    ctx.reporter()
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses a file, reporting every syntax error; `None` when it has any.
fn parse<'a>(source: &'a SourceFile, reporter: &mut Reporter) -> Option<DeTable<'a>> {
    let (table, errors) = DeTable::parse_recoverable(source.text());
    for error in &errors {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim_end().replace('\n', "; ");
        reporter.error(source, &span, None, format!("invalid TOML: {message}"));
    }
    errors.is_empty().then(|| table.into_inner())
}

/// The tables of `[[key]]`, each with its own span.
fn array_of_tables<'a>(
    source: &'a SourceFile,
    table: Option<&'a DeTable<'a>>,
    key: &str,
) -> Vec<Section<'a>> {
    let Some(array) = table
        .and_then(|t| t.get(key))
        .and_then(|v| v.get_ref().as_array())
    else {
        return Vec::new();
    };
    array
        .iter()
        .filter_map(|value| {
            Some(Section {
                file: source,
                table: value.get_ref().as_table()?,
                span: value.span(),
            })
        })
        .collect()
}

/// Reports `[daemon]` written as `[[daemon]]`, `[[probe]]` written as `[probe]`, and the like.
fn check_section_shapes(ctx: &mut Ctx<'_>, top: &Section<'_>) {
    for item in top.items() {
        let single = matches!(
            item.name(),
            "daemon" | "defaults" | "evidence" | "witness" | "page"
        );
        let raw = item.raw();
        if single && !raw.is_table() {
            ctx.error(item, format!("expected a [{}] table", item.name()));
        }
        let list = matches!(item.name(), "channel" | "sla" | "maintenance" | "probe");
        let tables = raw
            .as_array()
            .is_some_and(|a| a.iter().all(|v| v.get_ref().is_table()));
        if list && !tables {
            ctx.error(item, format!("expected [[{}]] tables", item.name()));
        }
    }
}

/// `probes_dir/*.toml`, sorted by name.
fn list_probe_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_files_split_before_headers_and_not_inside_strings() {
        let text = "# comment\n[[probe]]\nname = \"a\"\n\n[[probe]]\nbody = \"\"\"\n[[probe]]\n\"\"\"\n  [[ probe ]] # c\nname = \"c\"\n";
        let parts = split_probe_file(text, 1);
        let texts: Vec<&str> = parts.iter().map(|p| &text[p.bytes.clone()]).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts[0].starts_with("# comment\n[[probe]]"));
        assert!(texts[1].starts_with("[[probe]]\nbody"));
        assert!(texts[2].starts_with("  [[ probe ]]"));
        assert_eq!(
            parts.iter().map(|p| p.first_line).collect::<Vec<_>>(),
            [1, 5, 9]
        );
        assert_eq!(texts.concat(), text);
        assert_eq!(split_probe_file(text, 64).len(), 1);
    }
}
