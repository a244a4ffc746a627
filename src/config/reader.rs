//! Reading spanned TOML tables into typed values while collecting every problem.
//!
//! serde's `deny_unknown_fields` stops at the first unknown key; users fixing a config want the
//! whole list. So tables are parsed with spans ([`toml::de::DeTable`]) and each key is read on
//! its own: a bad value is reported at its own position and reading goes on.

use std::{ops::Range, str::FromStr, time::Duration};

use toml::{
    Spanned,
    de::{DeString, DeTable, DeValue},
};

use super::{Diagnostic, Diagnostics, source::SourceFile};
use crate::model::Percent;

/// Collects diagnostics from every file, to be sorted into file order at the end.
#[derive(Debug, Default)]
pub(crate) struct Reporter {
    /// (file order, (line, column), diagnostic).
    entries: Vec<(usize, (usize, usize), Diagnostic)>,
    /// Warnings, kept apart so they never make a configuration invalid.
    warnings: Vec<(usize, (usize, usize), Diagnostic)>,
}

/// A diagnostic at `span` of `file`, with what orders it: file, then position.
fn located(
    file: &SourceFile,
    span: &Range<usize>,
    context: Option<&str>,
    message: String,
) -> (usize, (usize, usize), Diagnostic) {
    let (line, column) = file.position(span);
    (
        file.order(),
        (line, column),
        Diagnostic {
            file: file.path().to_owned(),
            line,
            column,
            context: context.map(str::to_owned),
            message,
        },
    )
}

impl Reporter {
    /// Records a problem at `span` of `file`.
    pub(crate) fn error(
        &mut self,
        file: &SourceFile,
        span: &Range<usize>,
        context: Option<&str>,
        message: impl Into<String>,
    ) {
        self.entries
            .push(located(file, span, context, message.into()));
    }

    /// Records a warning at `span` of `file`: located like an error, but the load goes on.
    pub(crate) fn warn(
        &mut self,
        file: &SourceFile,
        span: &Range<usize>,
        context: Option<&str>,
        message: impl Into<String>,
    ) {
        self.warnings
            .push(located(file, span, context, message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every warning, ordered by file then position.
    pub(crate) fn take_warnings(&mut self) -> Vec<Diagnostic> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|(file, offset, _)| (*file, *offset));
        warnings.into_iter().map(|(_, _, d)| d).collect()
    }

    /// Every problem, ordered by file then position.
    pub(crate) fn into_diagnostics(mut self) -> Diagnostics {
        self.entries
            .sort_by_key(|(file, offset, _)| (*file, *offset));
        let mut list: Vec<Diagnostic> = self.entries.into_iter().map(|(_, _, d)| d).collect();
        // A bad `[defaults]` value is met once per probe but reported once.
        let mut seen = std::collections::HashSet::new();
        list.retain(|d| seen.insert(d.clone()));
        Diagnostics(list)
    }
}

/// One `key = value` of a table, with the file it came from.
#[derive(Clone, Copy)]
pub(crate) struct Item<'a> {
    pub file: &'a SourceFile,
    /// The key of the inline table this item is in (`headers` for `headers.Accept`).
    pub parent: Option<&'a str>,
    pub key: &'a Spanned<DeString<'a>>,
    pub value: &'a Spanned<DeValue<'a>>,
}

impl<'a> Item<'a> {
    pub(crate) fn span(&self) -> Range<usize> {
        self.value.span()
    }

    pub(crate) fn name(&self) -> &'a str {
        self.key.get_ref()
    }

    pub(crate) fn raw(&self) -> &'a DeValue<'a> {
        self.value.get_ref()
    }
}

/// A table being read: `[daemon]`, one `[[probe]]`, …
#[derive(Clone)]
pub(crate) struct Section<'a> {
    pub file: &'a SourceFile,
    pub table: &'a DeTable<'a>,
    /// Where the table starts, for "missing key" messages.
    pub span: Range<usize>,
}

impl<'a> Section<'a> {
    /// The item under `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<Item<'a>> {
        self.table.get_key_value(key).map(|(key, value)| Item {
            file: self.file,
            parent: None,
            key,
            value,
        })
    }

    /// Every item, in key order.
    pub(crate) fn items(&self) -> impl Iterator<Item = Item<'a>> + '_ {
        self.table.iter().map(|(key, value)| Item {
            file: self.file,
            parent: None,
            key,
            value,
        })
    }

    /// Reports each key that is not in `allowed`, suggesting the closest allowed key.
    pub(crate) fn reject_unknown_keys(&self, ctx: &mut Ctx<'_>, allowed: &[&str], what: &str) {
        for item in self.items() {
            let key = item.name();
            if !allowed.contains(&key) {
                let hint = closest(key, allowed)
                    .map(|near| format!(" (did you mean \"{near}\"?)"))
                    .unwrap_or_default();
                ctx.error_at(
                    item.file,
                    &item.key.span(),
                    format!("unknown key \"{key}\" in {what}{hint}"),
                );
            }
        }
    }
}

/// The allowed key nearest to `key`, if it is plausibly a typo.
fn closest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Reads typed values from items, reporting problems under one context (`probe "web"`).
pub(crate) struct Ctx<'r> {
    reporter: &'r mut Reporter,
    context: Option<String>,
    env: &'r dyn Fn(&str) -> Option<String>,
}

impl<'r> Ctx<'r> {
    pub(crate) fn new(
        reporter: &'r mut Reporter,
        context: Option<String>,
        env: &'r dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Ctx {
            reporter,
            context,
            env,
        }
    }

    /// Reports under another context from here on (once a probe's name is known).
    pub(crate) fn set_context(&mut self, context: String) {
        self.context = Some(context);
    }

    /// Runs `f` reporting under `context`, then restores the current context.
    pub(crate) fn in_context<T>(&mut self, context: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.context.replace(context.to_owned());
        let result = f(self);
        self.context = saved;
        result
    }

    /// Runs `f` reporting with no context (for messages that name their section themselves).
    pub(crate) fn in_context_none<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.context.take();
        let result = f(self);
        self.context = saved;
        result
    }

    /// The reporter, to read under another context for a while.
    pub(crate) fn reporter(&mut self) -> &mut Reporter {
        self.reporter
    }

    /// Problems reported so far, by anyone.
    pub(crate) fn error_count(&self) -> usize {
        self.reporter.entries.len()
    }

    pub(crate) fn error_at(&mut self, file: &SourceFile, span: &Range<usize>, message: String) {
        self.reporter
            .error(file, span, self.context.as_deref(), message);
    }

    /// Warns about an item's value (see [`Reporter::warn`]); the message names the key itself.
    pub(crate) fn warning(&mut self, item: Item<'_>, message: impl Into<String>) {
        self.reporter
            .warn(item.file, &item.span(), self.context.as_deref(), message);
    }

    /// Reports a problem with an item's value.
    pub(crate) fn error(&mut self, item: Item<'_>, message: impl Into<String>) {
        let message = match item.parent {
            Some(parent) => format!("{parent}.{}: {}", item.name(), message.into()),
            None => format!("{}: {}", item.name(), message.into()),
        };
        self.error_at(item.file, &item.span(), message);
    }

    fn wrong_type(&mut self, item: Item<'_>, expected: &str) {
        let found = item.raw().type_str();
        self.error(item, format!("expected {expected}, found {found}"));
    }

    /// A string, with `${VAR}` expanded from the environment.
    pub(crate) fn string(&mut self, item: Item<'_>) -> Option<String> {
        let Some(text) = item.raw().as_str() else {
            self.wrong_type(item, "a string");
            return None;
        };
        match expand_env(text, self.env) {
            Ok(expanded) => Some(expanded),
            Err(message) => {
                self.error(item, message);
                None
            }
        }
    }

    /// A string parsed with `parse`, whose error is the message.
    pub(crate) fn parsed<T>(
        &mut self,
        item: Item<'_>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(item)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(item, message);
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, item: Item<'_>) -> Option<bool> {
        let value = item.raw().as_bool();
        if value.is_none() {
            self.wrong_type(item, "true or false");
        }
        value
    }

    /// An integer in `range`.
    pub(crate) fn integer<T>(&mut self, item: Item<'_>, min: i128, max: i128) -> Option<T>
    where
        T: TryFrom<i128>,
    {
        let Some(integer) = item.raw().as_integer() else {
            self.wrong_type(item, "an integer");
            return None;
        };
        let parsed = i128::from_str_radix(&integer.as_str().replace('_', ""), integer.radix());
        match parsed.ok().filter(|n| (min..=max).contains(n)) {
            Some(n) => T::try_from(n).ok(),
            None => {
                self.error(item, format!("must be an integer from {min} to {max}"));
                None
            }
        }
    }

    /// A number (integer or float).
    pub(crate) fn number(&mut self, item: Item<'_>) -> Option<f64> {
        let raw = item.raw();
        let text = raw
            .as_float()
            .map(|f| f.as_str())
            .or_else(|| raw.as_integer().map(|i| i.as_str()));
        match text.and_then(|t| t.replace('_', "").parse::<f64>().ok()) {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.wrong_type(item, "a number");
                None
            }
        }
    }

    /// A humantime duration such as `"30s"` or `"1h 30m"`, greater than zero.
    pub(crate) fn duration(&mut self, item: Item<'_>) -> Option<Duration> {
        self.parsed(item, |text| match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
            Ok(d) => Ok(d),
            Err(e) => Err(format!(
                "invalid duration \"{text}\": {e} (examples: \"30s\", \"5m\", \"1h 30m\")"
            )),
        })
    }

    /// A percentage such as `"99.9%"`.
    pub(crate) fn percent(&mut self, item: Item<'_>) -> Option<Percent> {
        self.parsed(item, |text| {
            Percent::from_str(text).map_err(|e| e.to_string())
        })
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub(crate) fn string_list(&mut self, item: Item<'_>) -> Option<Vec<String>> {
        match item.raw() {
            DeValue::String(_) => self.string(item).map(|s| vec![s]),
            DeValue::Array(array) => {
                let mut out = Vec::new();
                let mut ok = true;
                for element in array.iter() {
                    let element_item = Item {
                        value: element,
                        ..item
                    };
                    match self.string(element_item) {
                        Some(s) => out.push(s),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.wrong_type(item, "a list of strings");
                None
            }
        }
    }

    /// A list of tables (`[{ … }, { … }]` or `[[section.key]]`), each as a section of its own.
    pub(crate) fn tables<'i>(&mut self, item: Item<'i>) -> Option<Vec<Section<'i>>> {
        let Some(array) = item.raw().as_array() else {
            self.wrong_type(item, "a list of tables");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for element in array.iter() {
            match element.get_ref().as_table() {
                Some(table) => out.push(Section {
                    file: item.file,
                    table,
                    span: element.span(),
                }),
                None => {
                    self.wrong_type(
                        Item {
                            value: element,
                            ..item
                        },
                        "a table",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An inline table of strings, in key order.
    pub(crate) fn string_map(&mut self, item: Item<'_>) -> Option<Vec<(String, String)>> {
        let Some(table) = item.raw().as_table() else {
            self.wrong_type(item, "a table of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            let entry = Item {
                file: item.file,
                parent: Some(item.name()),
                key,
                value,
            };
            match self.string(entry) {
                Some(s) => out.push((key.get_ref().to_string(), s)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Expands `${NAME}` from the environment; `$${` stands for a literal `${`.
pub(crate) fn expand_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(close) = tail.find('}') else {
                return Err("unterminated \"${\" (write \"$${\" for a literal \"${\")".into());
            };
            let name = &tail[..close];
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "invalid variable name \"{name}\" in \"${{{name}}}\""
                ));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Variables from the process environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Looks up `name` in a fixed map; for tests.
#[cfg(test)]
pub(crate) fn map_env<'m>(
    map: &'m std::collections::HashMap<&'m str, &'m str>,
) -> impl Fn(&str) -> Option<String> + 'm {
    move |name| map.get(name).map(|v| (*v).to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn expands_variables_and_escapes() {
        let vars = HashMap::from([("TOKEN", "s3cret"), ("HOST", "h")]);
        let env = map_env(&vars);
        assert_eq!(
            expand_env("Bearer ${TOKEN}", &env).unwrap(),
            "Bearer s3cret"
        );
        assert_eq!(expand_env("${HOST}:${HOST}", &env).unwrap(), "h:h");
        assert_eq!(
            expand_env("cost $5 and $${X}", &env).unwrap(),
            "cost $5 and ${X}"
        );
        assert_eq!(expand_env("ok$", &env).unwrap(), "ok$");
    }

    #[test]
    fn reports_missing_and_malformed_variables() {
        let vars = HashMap::new();
        let env = map_env(&vars);
        assert_eq!(
            expand_env("${NOPE}", &env).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(expand_env("${OPEN", &env).is_err());
        assert!(expand_env("${a-b}", &env).is_err());
    }

    #[test]
    fn suggests_near_keys_only() {
        let allowed = ["url", "timeout", "interval", "body_contains"];
        assert_eq!(closest("urll", &allowed), Some("url"));
        assert_eq!(closest("timout", &allowed), Some("timeout"));
        assert_eq!(closest("body_contain", &allowed), Some("body_contains"));
        assert_eq!(closest("zzz", &allowed), None);
    }
}
