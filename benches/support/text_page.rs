//! A realistic HTML page for the compression figures (benches/compress.rs): the project's own
//! prose (docs/*.md, fixed files) as paragraphs under a typical head and navigation, cut at
//! the size asked for. English text with markup compresses as real pages do (3-6x), unlike a
//! short page repeated, which compresses far better than anything real.

const PROSE: [&str; 4] = [
    include_str!("../../docs/architecture.md"),
    include_str!("../../docs/cache.md"),
    include_str!("../../docs/operations.md"),
    include_str!("../../docs/origin.md"),
];

const HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>pibl: the life of a request</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n\
<script defer src=\"/app.js\"></script>\n</head>\n<body>\n<header class=\"site-header\">\n\
<nav class=\"main-nav\"><ul>\n<li><a href=\"/\" class=\"nav-link active\">Home</a></li>\n\
<li><a href=\"/docs/\" class=\"nav-link\">Documentation</a></li>\n\
<li><a href=\"/blog/\" class=\"nav-link\">Blog</a></li>\n\
<li><a href=\"/download/\" class=\"nav-link\">Download</a></li>\n</ul></nav>\n</header>\n\
<main class=\"content\">\n<article class=\"doc\">\n";

const TAIL: &str = "</article>\n</main>\n<footer class=\"site-footer\"><p>&copy; pibl \
authors. MIT licence.</p></footer>\n</body>\n</html>\n";

/// The page, `size` bytes long (closed properly; the prose is cut at a paragraph).
pub fn page(size: usize) -> Vec<u8> {
    let mut out = String::from(HEAD);
    'all: for doc in PROSE.iter().cycle().take(16) {
        for para in doc.split("\n\n") {
            let para = para.trim();
            if para.is_empty() {
                continue;
            }
            let (tag, text) = match para.strip_prefix("## ") {
                Some(h) => ("h2", h),
                None => match para.strip_prefix("# ") {
                    Some(h) => ("h1", h),
                    None => ("p", para),
                },
            };
            let escaped = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            let element = format!("<{tag} class=\"doc-{tag}\">{escaped}</{tag}>\n");
            if out.len() + element.len() + TAIL.len() > size {
                break 'all;
            }
            out.push_str(&element);
        }
    }
    out.push_str(TAIL);
    while out.len() < size {
        out.push(' ');
    }
    out.into_bytes()
}
