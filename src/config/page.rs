//! `[page]` of the main file: the status page's title and logo. The logo is read here, at
//! load (and so at every reload), so a missing or unsuitable file is a located error before
//! the daemon serves anything, and the page inlines the bytes: it loads nothing from elsewhere.

use std::path::{Path, PathBuf};

use super::{
    probe::shown_text,
    reader::{Ctx, Section},
    spec::{Logo, PageSpec, relative_to},
};

/// Keys of `[page]`.
const PAGE_KEYS: &[&str] = &["title", "logo"];

/// The largest logo taken: the page carries it in every rendering, base64 (a third larger).
pub(crate) const MAX_LOGO_BYTES: u64 = 256 * 1024;

/// Reads `[page]`; a missing section means the default title and no logo.
pub(crate) fn read_page(ctx: &mut Ctx<'_>, section: Option<Section<'_>>, main: &Path) -> PageSpec {
    let Some(section) = section else {
        return PageSpec::default();
    };
    ctx.in_context_none(|ctx| section.reject_unknown_keys(ctx, PAGE_KEYS, "[page]"));
    let title = section
        .get("title")
        .and_then(|item| ctx.parsed(item, shown_text))
        .unwrap_or_else(|| PageSpec::DEFAULT_TITLE.to_owned());
    let logo = section
        .get("logo")
        .and_then(|item| ctx.parsed(item, |text| read_logo(&relative_to(main, Path::new(text)))));
    PageSpec { title, logo }
}

/// Reads a logo file: PNG, JPEG or SVG (told by its content), at most [`MAX_LOGO_BYTES`].
fn read_logo(path: &Path) -> Result<Logo, String> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .len();
    if size > MAX_LOGO_BYTES {
        return Err(format!(
            "{shown} has {} KiB; a logo may have at most {} KiB (the page inlines it)",
            size.div_ceil(1024),
            MAX_LOGO_BYTES / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let media_type =
        media_type(&bytes).ok_or_else(|| format!("{shown} is not a PNG, JPEG or SVG image"))?;
    Ok(Logo {
        path: PathBuf::from(path),
        media_type,
        bytes,
    })
}

/// The image type of `bytes` from their content (an extension can lie).
fn media_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(b"\xff\xd8\xff") {
        return Some("image/jpeg");
    }
    // SVG is XML text: a prolog, comments or a doctype may come before the root element.
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (text.starts_with('<') && text.contains("<svg")).then_some("image/svg+xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a main file `main` (with one probe) from a folder holding `files`, returning the
    /// configuration's `[page]` or its diagnostics, one a line.
    fn load(main: &str, files: &[(&str, &[u8])]) -> (tempfile::TempDir, Result<PageSpec, String>) {
        let (dir, loaded) = crate::config::load_in_folder(main, files);
        (dir, loaded.map(|config| config.page))
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_page_has_a_default_title_and_no_logo() {
        let (_dir, page) = load("[daemon]\nledger = \"l\"\n", &[]);
        assert_eq!(page, Ok(PageSpec::default()));
        assert_eq!(PageSpec::default().title, "Service status");
        let (_dir, page) = load("[page]\n", &[]);
        assert_eq!(page, Ok(PageSpec::default()));
    }

    #[test]
    fn a_title_and_a_logo_next_to_the_main_file_are_read() {
        let (dir, page) = load(
            "[page]\ntitle = \"  ACME Cloud status \"\nlogo = \"art/logo.png\"\n",
            &[],
        );
        // The folder did not exist yet: a located error, then the real thing.
        assert!(page.is_err());
        std::fs::create_dir_all(dir.path().join("art")).expect("a folder");
        std::fs::write(dir.path().join("art/logo.png"), PNG).expect("a logo");
        let page = crate::config::load(&dir.path().join("upledger.toml"))
            .expect("valid")
            .page;
        assert_eq!(page.title, "ACME Cloud status");
        let logo = page.logo.expect("a logo");
        assert_eq!(logo.path, dir.path().join("art/logo.png"));
        assert_eq!(logo.media_type, "image/png");
        assert_eq!(
            logo.data_uri(),
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
        );
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 8 8\"/>";
        let (_dir, page) = load("[page]\nlogo = \"logo.svg\"\n", &[("logo.svg", svg)]);
        assert_eq!(
            page.expect("valid").logo.expect("a logo").media_type,
            "image/svg+xml"
        );
    }

    #[test]
    fn bad_page_settings_are_each_named_at_their_line() {
        let big = vec![0xffu8; MAX_LOGO_BYTES as usize + 1];
        for (main, files, expected) in [
            (
                "[page]\nlogo = \"missing.png\"\n",
                vec![],
                "upledger.toml:2:8: [page]: logo: cannot read ",
            ),
            (
                "[page]\ntitle = \"x\"\nlogo = \"logo.gif\"\n",
                vec![("logo.gif", &b"GIF89a...."[..])],
                "upledger.toml:3:8: [page]: logo: ",
            ),
            (
                "[page]\nlogo = \"big.jpg\"\n",
                vec![("big.jpg", &big[..])],
                "[page]: logo: ",
            ),
            (
                "[page]\ntitle = \"   \"\n",
                vec![],
                "upledger.toml:2:9: [page]: title: must not be empty",
            ),
            (
                "[page]\ntitle = \"a\\nb\"\n",
                vec![],
                "upledger.toml:2:9: [page]: title: must be one line of text",
            ),
            (
                "[page]\ncolour = \"red\"\n",
                vec![],
                "upledger.toml:2:1: unknown key \"colour\" in [page]",
            ),
            (
                "[[page]]\ntitle = \"x\"\n",
                vec![],
                "expected a [page] table",
            ),
        ] {
            let (_dir, page) = load(main, &files);
            let error = page.expect_err(main);
            assert!(error.contains(expected), "{expected} not in:\n{error}");
        }
        let (_dir, page) = load("[page]\nlogo = \"logo.gif\"\n", &[("logo.gif", b"GIF89a")]);
        assert!(
            page.expect_err("a GIF")
                .ends_with("logo.gif is not a PNG, JPEG or SVG image")
        );
        let (_dir, page) = load("[page]\nlogo = \"big.jpg\"\n", &[("big.jpg", &big)]);
        assert!(page.expect_err("too big").ends_with(
            "big.jpg has 257 KiB; a logo may have at most 256 KiB (the page inlines it)"
        ));
        let long = "x".repeat(101);
        let (_dir, page) = load(&format!("[page]\ntitle = \"{long}\"\n"), &[]);
        assert!(
            page.expect_err("too long")
                .contains("title: must be at most 100 characters (this one has 101)")
        );
    }

    #[test]
    fn images_are_told_by_their_content() {
        assert_eq!(media_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(media_type(b"\xff\xd8\xff\xe0...."), Some("image/jpeg"));
        assert_eq!(
            media_type(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"x\"/>"),
            Some("image/svg+xml")
        );
        assert_eq!(
            media_type("\u{feff}  <svg/>".as_bytes()),
            Some("image/svg+xml")
        );
        for other in [&b"GIF89a"[..], b"hello <svg", b"", b"\x89PNG"] {
            assert_eq!(media_type(other), None, "{other:?}");
        }
    }
}
