//! A config file's text and the mapping from byte offsets to line and column.

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

/// One configuration file, read whole.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// Position in load order: main config first, then probe files by name.
    order: usize,
    path: PathBuf,
    text: String,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// Line number of the text's first line in the file (1 unless this is a part of it).
    first_line: usize,
}

impl SourceFile {
    pub(crate) fn new(order: usize, path: PathBuf, text: String) -> Self {
        Self::part(order, path, text, 1)
    }

    /// A part of a file that starts at line `first_line`; positions are reported in the file.
    pub(crate) fn part(order: usize, path: PathBuf, text: String, first_line: usize) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            order,
            path,
            text,
            line_starts,
            first_line,
        }
    }

    pub(crate) fn order(&self) -> usize {
        self.order
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line.saturating_sub(1)];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |prefix| prefix.chars().count());
        (line + self.first_line - 1, column + 1)
    }

    /// The position of a span's start.
    pub(crate) fn position(&self, span: &Range<usize>) -> (usize, usize) {
        self.line_col(span.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let file = SourceFile::new(0, "f.toml".into(), "a = 1\nbé = 2\n\nc".into());
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(4), (1, 5));
        assert_eq!(file.line_col(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(file.line_col(12), (2, 6));
        assert_eq!(file.line_col(15), (4, 1));
    }
}
