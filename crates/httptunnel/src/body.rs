//! Excerpts of a proxy's error page for messages shown to the user: the
//! body that follows a refusal's head (chunked or not), reduced to its text.

/// user (a proxy's 403 page says why): the text of an HTML page (tags,
/// comments, scripts and styles dropped, a few entities decoded) or the
/// first three lines of plain text, whitespace collapsed, no control
/// characters, at most `max` characters (`...` when cut). Empty when the
/// body has no text.
pub fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}').trim();
    let flat = if text.starts_with('<') {
        html_text(text)
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let flat: String = flat
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

/// The data of the complete chunks at the start of a chunked body (RFC
/// 9112 §7.1), for [`body_excerpt`]; stops at the last chunk, a partial
/// chunk or anything malformed.
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .map(|l| l.split(';').next().unwrap_or_default().trim())
            .and_then(|h| usize::from_str_radix(h, 16).ok());
        let Some(size) = size.filter(|&n| n > 0) else {
            break;
        };
        let data = &b[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < size + 2 {
            break;
        }
        b = &data[size + 2..];
    }
    out
}

/// The visible text of an HTML page, roughly: good enough for an error
/// page, not a parser.
fn html_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
        } else if let Some(end_tag) = ["script", "style"]
            .iter()
            .find(|t| rest.starts_with(&format!("<{t}")))
            .map(|t| format!("</{t}"))
        {
            let skip = rest.find(&end_tag).unwrap_or(rest.len());
            i += skip;
            let r = &lower[i..];
            i += r.find('>').map_or(r.len(), |e| e + 1);
        } else if rest.starts_with('<') {
            i += rest.find('>').map_or(rest.len(), |e| e + 1);
            out.push(' ');
        } else {
            let next = rest.find('<').unwrap_or(rest.len());
            out.push_str(&html[i..i + next]);
            i += next;
        }
    }
    for (entity, c) in [
        ("&nbsp;", " "),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ] {
        out = out.replace(entity, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunking() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n"),
            b"Wikipedia "
        );
        assert_eq!(dechunk(b"4\r\nWi"), b"Wi");
        assert_eq!(dechunk(b"zz\r\nWiki\r\n"), b"");
        assert_eq!(dechunk(b""), b"");
        assert_eq!(dechunk(b"ffffffffffffffffff\r\nx"), b"");
    }

    #[test]
    fn body_excerpts() {
        assert_eq!(
            body_excerpt(b"Tunnels to port 22 are not allowed.\n", 200),
            "Tunnels to port 22 are not allowed."
        );
        assert_eq!(
            body_excerpt(b"one\r\n\r\n  two  \nthree\nfour\n", 200),
            "one / two / three"
        );
        let squid = b"<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\">\n<html><head>\
            <meta type=\"copyright\" content=\"Copyright (C) 1996-2023\">\
            <title>ERROR: The requested URL could not be retrieved</title>\
            <style type=\"text/css\"><!-- body { color: #000; } --></style>\
            <script>var x = '<b>';</script></head><body>\
            <p><b>Access Denied.</b></p><p>Access&nbsp;control &amp; co.</p></body></html>";
        assert_eq!(
            body_excerpt(squid, 200),
            "ERROR: The requested URL could not be retrieved Access Denied. Access control & co."
        );
        assert_eq!(body_excerpt(b"abcdefghij", 8), "abcde...");
        assert_eq!(
            body_excerpt(b"bell\x07 and\x1b[31m red", 100),
            "bell and [31m red"
        );
        assert_eq!(body_excerpt(b"", 100), "");
        assert_eq!(body_excerpt(b"<html><body></body></html>", 100), "");
        // Unterminated markup does not loop or panic.
        assert_eq!(body_excerpt(b"<b>x<script>never closed", 100), "x");
        assert_eq!(body_excerpt(b"<p>a<!-- open", 100), "a");
        assert_eq!(
            body_excerpt("<p>\u{e9}t\u{e9}</p>".as_bytes(), 100),
            "\u{e9}t\u{e9}"
        );
    }
}
