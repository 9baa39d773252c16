//! text/html to text for faxing, through a real HTML5 parser.
//!
//! Parsing is html5ever's (the WHATWG HTML tree-construction algorithm, as browsers run it), so
//! what a mail client wrote — unclosed `<p>`s, tables without `<tbody>`, Outlook's `<o:p>`,
//! misnested formatting — becomes the tree a browser would show. The tree is built here in a
//! flat arena ([`Arena`]) rather than a reference-counted DOM, so that its size can be capped
//! while it is built (see [`Limits`]). Then the tree is read once, without recursion, into
//! text laid out for the monospace fax font:
//!
//! - paragraphs, headings, `<div>`s, block quotes begin and end on their own lines, `<br>` is a
//!   line break, `<hr>` a rule, `<pre>` keeps its white space (elsewhere runs of white space
//!   collapse to one space, as HTML renders them);
//! - lists are indented, with `*` bullets or `1.` numbers;
//! - tables are set in aligned columns (cells wrapped to fit 80 columns), the header row ruled;
//! - links keep their address, pictures their alt text; a picture referenced by `cid:` (RFC
//!   2392, the inline pictures of a `multipart/related` message) becomes a [`Block::Image`] in
//!   its place, so that the caller can fax the picture there.
//!
//! Nothing is ever fetched: `src`/`href` are only printed. PURE and bounded: the input is
//! limited in octets, the tree in nodes and formatting elements, the walk is a loop over an
//! explicit stack, so hostile nesting can neither exhaust the stack nor the memory.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, ExpandedName, LocalName, QualName, local_name, ns, parse_document};

/// Limits on one HTML text: everything past them is refused, never half-shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Octets of HTML (a long newsletter is ~200 KB).
    pub max_bytes: usize,
    /// Nodes (elements and text runs) in the tree.
    pub max_nodes: usize,
    /// Formatting elements (`<b>`, `<a>`, `<font>`, …) created while parsing, re-created ones
    /// included. The HTML5 algorithm compares each new one with the unclosed ones ("Noah's
    /// Ark", WHATWG HTML §13.2.4.3) and re-creates the unclosed ones in every new paragraph
    /// (§13.2.4.3 "reconstruct"): both cost the square of their number, so it is bounded on
    /// its own. A real mail creates a few hundred (one unclosed `<font>` re-created in each of
    /// its paragraphs counts once per paragraph).
    pub max_formatting: usize,
    /// Depth of nested elements. The HTML5 algorithm looks through the open elements for
    /// most start tags ("has an element in scope", WHATWG HTML §13.2.4.2), so the cost of a
    /// tag grows with the depth; browsers also stop nesting near this depth (Chromium at 512).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
            max_nodes: 100_000,
            max_formatting: 20_000,
            max_depth: 512,
        }
    }
}

/// Why an HTML text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtmlError {
    /// Over [`Limits::max_bytes`].
    #[error("the HTML is longer than {limit} octets")]
    TooLong {
        /// Octets allowed.
        limit: usize,
    },
    /// Over [`Limits::max_depth`].
    #[error("the HTML nests elements deeper than {limit} levels")]
    TooDeep {
        /// Levels allowed.
        limit: usize,
    },
    /// Over [`Limits::max_nodes`] or [`Limits::max_formatting`].
    #[error("the HTML has more than {limit} {what}")]
    TooComplex {
        /// What was counted.
        what: &'static str,
        /// How many are allowed.
        limit: usize,
    },
}

/// A piece of the converted text, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Text, lines ending in `\n`.
    Text(String),
    /// A picture of the message shown here (`<img src="cid:…">`).
    Image {
        /// The Content-ID it refers to, without `cid:` and angle brackets, URL-decoded.
        cid: String,
        /// Its alt text (may be empty).
        alt: String,
    },
}

/// Converts HTML to text; a picture referenced by `cid:` is shown by its alt text. Past a
/// limit ([`Limits::default`]) the text converted so far is kept and a line says the rest
/// was left out (this is the renderer's fallback for an HTML file; the offramp calls
/// [`to_blocks`] and refuses such a part instead).
pub fn to_text(html: &str) -> String {
    match to_blocks(html, &Limits::default()) {
        Ok(blocks) => join_blocks(&blocks),
        Err(e) => {
            let cut = truncate_at_char(html, Limits::default().max_bytes / 4);
            let mut t = to_blocks(cut, &Limits::default())
                .map(|b| join_blocks(&b))
                .unwrap_or_default();
            t.push_str(&format!("\n[The rest of this HTML is not shown: {e}.]\n"));
            t
        }
    }
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn join_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Text(t) => out.push_str(t),
            Block::Image { alt, .. } if !alt.trim().is_empty() => {
                out.push_str(&format!("[{}]\n", alt.trim()));
            }
            Block::Image { .. } => {}
        }
    }
    out
}

/// Converts HTML to text blocks and the `cid:` pictures between them, in reading order.
pub fn to_blocks(html: &str, limits: &Limits) -> Result<Vec<Block>, HtmlError> {
    if html.len() > limits.max_bytes {
        return Err(HtmlError::TooLong {
            limit: limits.max_bytes,
        });
    }
    let arena = parse(html, limits)?;
    Ok(Converter::new(&arena).run())
}

// ---------------------------------------------------------------------------------------
// The tree: html5ever's TreeSink over a flat arena.

/// A node's index in [`Arena::nodes`]; indices past its end are nodes dropped after a limit
/// (the parser still holds them; they are never read).
type Id = usize;

#[derive(Debug)]
enum Data {
    Document,
    Element {
        name: QualName,
        /// Only the attributes the conversion reads (`href`, `src`, `alt`).
        attrs: Vec<(LocalName, String)>,
        template: Option<Id>,
    },
    Text(String),
    /// A comment, processing instruction or template contents: never shown.
    Hidden,
}

#[derive(Debug)]
struct Node {
    parent: Option<Id>,
    /// Ancestors when it was inserted (the document's children have 1).
    depth: usize,
    children: Vec<Id>,
    data: Data,
}

/// The parsed tree.
#[derive(Debug, Default)]
struct Arena {
    nodes: Vec<Node>,
}

/// The parser's handle on a node: its index and, for elements, its name (which the parser
/// asks for often, and which must outlive any borrow of the arena).
#[derive(Clone, Debug)]
struct Handle {
    id: Id,
    name: Option<Rc<QualName>>,
}

struct Sink {
    arena: RefCell<Arena>,
    limits: Limits,
    /// Ids handed out for dropped nodes, counting on from `max_nodes`.
    next_dropped: Cell<usize>,
    formatting: Cell<usize>,
    /// Set when a limit is passed; shared with [`parse`], which stops feeding then.
    over: Rc<Cell<Option<HtmlError>>>,
    /// The name reported for a handle that is not an element (the parser never asks for it).
    no_name: QualName,
}

const FORMATTING: &[&str] = &[
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u",
];

impl Sink {
    fn new_node(&self, data: Data, name: Option<Rc<QualName>>) -> Handle {
        let mut arena = self.arena.borrow_mut();
        if arena.nodes.len() >= self.limits.max_nodes {
            self.fail(HtmlError::TooComplex {
                what: "elements",
                limit: self.limits.max_nodes,
            });
            let id = self.next_dropped.get();
            self.next_dropped.set(id.saturating_add(1));
            return Handle { id, name };
        }
        arena.nodes.push(Node {
            parent: None,
            depth: 0,
            children: Vec::new(),
            data,
        });
        Handle {
            id: arena.nodes.len() - 1,
            name,
        }
    }

    fn fail(&self, e: HtmlError) {
        let first = self.over.take().unwrap_or(e);
        self.over.set(Some(first));
    }

    fn detach(arena: &mut Arena, child: Id) {
        let Some(parent) = arena.nodes.get(child).and_then(|n| n.parent) else {
            return;
        };
        if let Some(p) = arena.nodes.get_mut(parent)
            && let Some(i) = p.children.iter().rposition(|&c| c == child)
        {
            p.children.remove(i);
        }
        if let Some(c) = arena.nodes.get_mut(child) {
            c.parent = None;
        }
    }

    /// Inserts `child` under `parent` at `at` (None: last).
    fn insert(&self, parent: Id, at: Option<usize>, child: NodeOrText<Handle>) {
        match child {
            NodeOrText::AppendNode(h) => {
                let mut arena = self.arena.borrow_mut();
                if parent >= arena.nodes.len() || h.id >= arena.nodes.len() {
                    return;
                }
                Self::detach(&mut arena, h.id);
                let depth = arena.nodes[parent].depth + 1;
                if depth > self.limits.max_depth {
                    drop(arena);
                    self.fail(HtmlError::TooDeep {
                        limit: self.limits.max_depth,
                    });
                    arena = self.arena.borrow_mut();
                }
                arena.nodes[h.id].parent = Some(parent);
                arena.nodes[h.id].depth = depth;
                let kids = &mut arena.nodes[parent].children;
                let at = at.unwrap_or(kids.len()).min(kids.len());
                kids.insert(at, h.id);
            }
            NodeOrText::AppendText(t) => {
                {
                    let mut arena = self.arena.borrow_mut();
                    let Some(p) = arena.nodes.get(parent) else {
                        return;
                    };
                    // Text next to text joins it (the parser hands text over in pieces).
                    let before = match at {
                        Some(0) => None,
                        Some(i) => p.children.get(i - 1).copied(),
                        None => p.children.last().copied(),
                    };
                    if let Some(b) = before
                        && let Some(Node {
                            data: Data::Text(s),
                            ..
                        }) = arena.nodes.get_mut(b)
                    {
                        s.push_str(&t);
                        return;
                    }
                }
                let h = self.new_node(Data::Text(t.to_string()), None);
                self.insert(parent, at, NodeOrText::AppendNode(h));
            }
        }
    }
}

impl TreeSink for Sink {
    type Handle = Handle;
    type Output = Arena;
    type ElemName<'a> = ExpandedName<'a>;

    fn finish(self) -> Arena {
        self.arena.into_inner()
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {
        // Mail HTML is rarely valid; the parser recovers as a browser would.
    }

    fn get_document(&self) -> Handle {
        Handle { id: 0, name: None }
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> ExpandedName<'a> {
        target.name.as_deref().unwrap_or(&self.no_name).expanded()
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Handle {
        if name.ns == ns!(html) && FORMATTING.contains(&&*name.local) {
            let n = self.formatting.get() + 1;
            self.formatting.set(n);
            if n > self.limits.max_formatting {
                self.fail(HtmlError::TooComplex {
                    what: "formatting elements",
                    limit: self.limits.max_formatting,
                });
            }
        }
        let attrs = attrs
            .into_iter()
            .filter(|a| {
                matches!(
                    a.name.local,
                    local_name!("href") | local_name!("src") | local_name!("alt")
                )
            })
            .map(|a| (a.name.local, a.value.to_string()))
            .collect();
        let template = if flags.template {
            Some(self.new_node(Data::Hidden, None).id)
        } else {
            None
        };
        let name = Rc::new(name);
        self.new_node(
            Data::Element {
                name: (*name).clone(),
                attrs,
                template,
            },
            Some(name),
        )
    }

    fn create_comment(&self, _text: StrTendril) -> Handle {
        self.new_node(Data::Hidden, None)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Handle {
        self.new_node(Data::Hidden, None)
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        self.insert(parent.id, None, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &Handle,
        prev_element: &Handle,
        child: NodeOrText<Handle>,
    ) {
        let has_parent = self
            .arena
            .borrow()
            .nodes
            .get(element.id)
            .is_some_and(|n| n.parent.is_some());
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &Handle) -> Handle {
        let id = match self.arena.borrow().nodes.get(target.id) {
            Some(Node {
                data: Data::Element {
                    template: Some(t), ..
                },
                ..
            }) => *t,
            // A dropped template: its contents are dropped too.
            _ => usize::MAX,
        };
        Handle { id, name: None }
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        x.id == y.id
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Handle, child: NodeOrText<Handle>) {
        let place = {
            let arena = self.arena.borrow();
            arena
                .nodes
                .get(sibling.id)
                .and_then(|n| n.parent)
                .and_then(|p| {
                    // From the end: the sibling is a table being foster-parented before, the
                    // last child of its parent.
                    let i = arena.nodes[p]
                        .children
                        .iter()
                        .rposition(|&c| c == sibling.id)?;
                    Some((p, i))
                })
        };
        if let Some((parent, i)) = place {
            self.insert(parent, Some(i), child);
        }
    }

    fn add_attrs_if_missing(&self, _target: &Handle, _attrs: Vec<Attribute>) {
        // Only for <html> and <body> attributes, which the conversion does not read.
    }

    fn remove_from_parent(&self, target: &Handle) {
        Self::detach(&mut self.arena.borrow_mut(), target.id);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        let mut arena = self.arena.borrow_mut();
        if node.id >= arena.nodes.len() || new_parent.id >= arena.nodes.len() {
            return;
        }
        let kids = std::mem::take(&mut arena.nodes[node.id].children);
        for &k in &kids {
            arena.nodes[k].parent = Some(new_parent.id);
        }
        arena.nodes[new_parent.id].children.extend(kids);
    }
}

/// Octets fed to the parser at a time; a limit passed is noticed at the end of a piece.
const PIECE: usize = 1024;

fn parse(html: &str, limits: &Limits) -> Result<Arena, HtmlError> {
    let over = Rc::new(Cell::new(None));
    let sink = Sink {
        arena: RefCell::new(Arena {
            nodes: vec![Node {
                parent: None,
                depth: 0,
                children: Vec::new(),
                data: Data::Document,
            }],
        }),
        limits: *limits,
        next_dropped: Cell::new(limits.max_nodes.max(1)),
        formatting: Cell::new(0),
        over: over.clone(),
        no_name: QualName::new(None, ns!(html), local_name!("span")),
    };
    let mut parser = parse_document(sink, Default::default());
    let mut rest = html;
    while !rest.is_empty() {
        let piece = truncate_at_char(rest, PIECE);
        // A piece always holds at least one character.
        let piece = if piece.is_empty() {
            let n = rest.chars().next().map_or(rest.len(), char::len_utf8);
            &rest[..n]
        } else {
            piece
        };
        rest = &rest[piece.len()..];
        parser.process(StrTendril::from_slice(piece));
        if let Some(e) = over.take() {
            return Err(e);
        }
    }
    let arena = parser.finish();
    match over.take() {
        Some(e) => Err(e),
        None => Ok(arena),
    }
}

// ---------------------------------------------------------------------------------------
// The tree to text.

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &[
    "script", "style", "head", "title", "template", "noscript", "object", "iframe",
];
/// Elements that begin and end on their own line, with an empty line around.
const PARAGRAPH: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "table",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "hr",
    "address",
    "figure",
];
/// Elements that begin and end on their own line.
const LINE: &[&str] = &[
    "div",
    "section",
    "article",
    "header",
    "footer",
    "form",
    "dt",
    "dd",
    "center",
    "main",
    "nav",
    "aside",
    "caption",
    "figcaption",
    "li",
    "tr",
    "body",
    "html",
];

/// Text being written: one per table cell being read, and the document's own.
#[derive(Default)]
struct Buf {
    text: String,
    at_line_start: bool,
    pending_space: bool,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            text: String::new(),
            at_line_start: true,
            pending_space: false,
        }
    }

    fn newline(&mut self) {
        if !self.at_line_start {
            self.text.push('\n');
            self.at_line_start = true;
        }
        self.pending_space = false;
    }

    fn blank_line(&mut self) {
        self.newline();
        if !self.text.is_empty() && !self.text.ends_with("\n\n") {
            self.text.push('\n');
        }
    }

    fn put(&mut self, c: char, prefix: &str) {
        if self.at_line_start {
            self.text.push_str(prefix);
            self.at_line_start = false;
        } else if self.pending_space {
            self.text.push(' ');
        }
        self.pending_space = false;
        self.text.push(c);
    }

    fn text(&mut self, s: &str, pre: bool, prefix: &str) {
        for c in s.chars() {
            match c {
                '\n' if pre => {
                    if self.at_line_start {
                        self.text.push_str(prefix);
                    }
                    self.text.push('\n');
                    self.at_line_start = true;
                }
                c if pre && c.is_whitespace() => self.put(' ', prefix),
                // ASCII white space collapses (HTML §"white-space: normal"); a no-break
                // space does not.
                ' ' | '\t' | '\n' | '\r' | '\u{c}' => {
                    if !self.at_line_start {
                        self.pending_space = true;
                    }
                }
                '\u{a0}' => {
                    self.put(' ', prefix);
                }
                c => self.put(c, prefix),
            }
        }
    }
}

/// A table being read: rows of cells; each cell the text of its content.
#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    /// Whether the first row is a header row (all `<th>`).
    head: bool,
    /// `cid:` pictures met inside, shown after the table.
    images: Vec<Block>,
}

/// One step of the walk: entering a node, or leaving an element.
enum Step {
    Enter(Id),
    Leave(Id),
}

struct Converter<'a> {
    arena: &'a Arena,
    blocks: Vec<Block>,
    /// The document's text, then one per open table cell.
    bufs: Vec<Buf>,
    tables: Vec<Table>,
    /// Indentation of lists and quotes.
    prefix: Vec<&'static str>,
    /// The page's indentation while a table cell is read, one per open cell.
    saved_prefixes: Vec<Vec<&'static str>>,
    /// Open lists: the next number of an ordered one, `None` for bullets.
    lists: Vec<Option<u32>>,
    pre: u32,
    /// The `href` of each open link.
    links: Vec<Option<String>>,
}

impl<'a> Converter<'a> {
    fn new(arena: &'a Arena) -> Self {
        Converter {
            arena,
            blocks: Vec::new(),
            bufs: vec![Buf::new()],
            tables: Vec::new(),
            prefix: Vec::new(),
            saved_prefixes: Vec::new(),
            lists: Vec::new(),
            pre: 0,
            links: Vec::new(),
        }
    }

    fn buf(&mut self) -> &mut Buf {
        if self.bufs.is_empty() {
            self.bufs.push(Buf::new());
        }
        let last = self.bufs.len() - 1;
        &mut self.bufs[last]
    }

    fn prefix_str(&self) -> String {
        self.prefix.concat()
    }

    fn write(&mut self, s: &str) {
        let prefix = self.prefix_str();
        let pre = self.pre > 0;
        self.buf().text(s, pre, &prefix);
    }

    fn run(mut self) -> Vec<Block> {
        let mut stack = vec![Step::Enter(0)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(id) => {
                    let Some(node) = self.arena.nodes.get(id) else {
                        continue;
                    };
                    match &node.data {
                        Data::Text(t) => self.write(t),
                        Data::Hidden => {}
                        Data::Document => {
                            stack.extend(node.children.iter().rev().map(|&c| Step::Enter(c)));
                        }
                        Data::Element { name, attrs, .. } => {
                            let tag = &*name.local;
                            if HIDDEN.contains(&tag) {
                                continue;
                            }
                            self.open(tag, attrs);
                            stack.push(Step::Leave(id));
                            stack.extend(node.children.iter().rev().map(|&c| Step::Enter(c)));
                        }
                    }
                }
                Step::Leave(id) => {
                    if let Some(Node {
                        data: Data::Element { name, .. },
                        ..
                    }) = self.arena.nodes.get(id)
                    {
                        self.close(&name.local);
                    }
                }
            }
        }
        self.flush_text();
        self.blocks
    }

    fn open(&mut self, tag: &str, attrs: &[(LocalName, String)]) {
        let attr = |n: &str| {
            attrs
                .iter()
                .find(|(k, _)| &**k == n)
                .map(|(_, v)| v.as_str())
        };
        if PARAGRAPH.contains(&tag) {
            self.buf().blank_line();
        } else if LINE.contains(&tag) {
            self.buf().newline();
        }
        match tag {
            "br" => {
                let prefix = self.prefix_str();
                let b = self.buf();
                if b.at_line_start {
                    // An empty line still shows its quote marks.
                    b.text.push_str(prefix.trim_end());
                }
                b.text.push('\n');
                b.at_line_start = true;
                b.pending_space = false;
            }
            "hr" => {
                self.write(&"-".repeat(40));
                self.buf().newline();
            }
            "pre" => self.pre += 1,
            "blockquote" => self.prefix.push("> "),
            "ul" => {
                self.lists.push(None);
                self.prefix.push("  ");
            }
            "ol" => {
                self.lists.push(Some(1));
                self.prefix.push("  ");
            }
            "li" => {
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}.");
                        *n += 1;
                        m
                    }
                    _ => "*".to_string(),
                };
                self.write(marker.trim_end());
                // The item's own text follows the marker after one space.
                self.buf().pending_space = true;
            }
            "a" => self.links.push(attr("href").map(str::to_string)),
            "img" => {
                let alt = attr("alt").unwrap_or("").trim().to_string();
                let cid = attr("src").and_then(cid_of);
                match cid {
                    Some(cid) if self.tables.is_empty() => {
                        self.flush_text();
                        self.blocks.push(Block::Image { cid, alt });
                    }
                    Some(cid) => {
                        if !alt.is_empty() {
                            self.write(&format!("[{alt}]"));
                        }
                        if let Some(t) = self.tables.last_mut() {
                            t.images.push(Block::Image { cid, alt });
                        }
                    }
                    None if !alt.is_empty() => self.write(&format!("[{alt}]")),
                    None => {}
                }
            }
            "table" => {
                self.tables.push(Table {
                    head: true,
                    ..Table::default()
                });
            }
            "tr" => {
                if let Some(t) = self.tables.last_mut() {
                    if !t.rows.is_empty() && t.rows.len() == 1 && t.rows[0].is_empty() {
                        t.rows.clear();
                    }
                    t.rows.push(Vec::new());
                }
            }
            "td" | "th" => {
                if let Some(t) = self.tables.last_mut() {
                    if t.rows.is_empty() {
                        t.rows.push(Vec::new());
                    }
                    if tag == "td" && t.rows.len() == 1 {
                        t.head = false;
                    }
                    self.bufs.push(Buf::new());
                    // A cell's text is laid out on its own, without the page's indentation.
                    let saved = std::mem::take(&mut self.prefix);
                    self.saved_prefixes.push(saved);
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, tag: &str) {
        match tag {
            "pre" => self.pre = self.pre.saturating_sub(1),
            "blockquote" | "ul" | "ol" => {
                if matches!(tag, "ul" | "ol") {
                    self.lists.pop();
                }
                self.prefix.pop();
            }
            "a" => {
                if let Some(Some(h)) = self.links.pop()
                    && !h.starts_with('#')
                    && !h.starts_with("mailto:")
                    && !h.starts_with("cid:")
                    && !self.buf().text.trim_end().ends_with(h.as_str())
                {
                    self.write(&format!(" <{h}>"));
                }
            }
            "td" | "th" => {
                if self.tables.is_empty() || self.bufs.len() < 2 {
                    return;
                }
                let cell = self.bufs.pop().map(|b| tidy(&b.text)).unwrap_or_default();
                if let Some(saved) = self.saved_prefixes.pop() {
                    self.prefix = saved;
                }
                if let Some(t) = self.tables.last_mut()
                    && let Some(row) = t.rows.last_mut()
                {
                    row.push(cell.trim_end_matches('\n').to_string());
                }
            }
            "table" => {
                let Some(t) = self.tables.pop() else {
                    return;
                };
                let width = (super::text::COLUMNS as usize)
                    .saturating_sub(self.prefix_str().chars().count())
                    .max(10);
                let lines = lay_table(&t.rows, t.head, width);
                let prefix = self.prefix_str();
                for l in lines {
                    // Laid out already: every space counts.
                    let b = self.buf();
                    for c in l.chars() {
                        b.put(c, &prefix);
                    }
                    b.newline();
                }
                self.buf().blank_line();
                for img in t.images {
                    if self.tables.is_empty() {
                        self.flush_text();
                        self.blocks.push(img);
                    } else if let Some(outer) = self.tables.last_mut() {
                        outer.images.push(img);
                    }
                }
            }
            _ => {}
        }
        if PARAGRAPH.contains(&tag) {
            self.buf().blank_line();
        } else if LINE.contains(&tag) {
            self.buf().newline();
        }
    }

    /// Moves the document's text so far into a block (before a picture, and at the end).
    fn flush_text(&mut self) {
        if self.bufs.len() != 1 {
            return;
        }
        let b = std::mem::replace(&mut self.bufs[0], Buf::new());
        let t = tidy(&b.text);
        if !t.trim().is_empty() {
            self.blocks.push(Block::Text(t));
        }
    }
}

/// The Content-ID an `src` refers to (RFC 2392 §2: `cid:` then the URL-encoded id, without
/// angle brackets).
fn cid_of(src: &str) -> Option<String> {
    let rest = src.trim();
    let id = rest
        .get(..4)
        .filter(|s| s.eq_ignore_ascii_case("cid:"))
        .map(|_| &rest[4..])?;
    let bytes = id.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let id = String::from_utf8_lossy(&out)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    (!id.is_empty()).then_some(id)
}

/// No trailing spaces, at most one empty line in a row, none at the start or end.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut empty = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            empty += 1;
            if empty > 1 || out.is_empty() {
                continue;
            }
        } else {
            empty = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Gap between table columns.
const GAP: &str = "  ";

/// Sets a table in columns at most `width` characters wide in all: each column as wide as its
/// widest line, or, when they do not all fit, narrower columns with their cells wrapped.
fn lay_table(rows: &[Vec<String>], head: bool, width: usize) -> Vec<String> {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    if ncols == 0 {
        return Vec::new();
    }
    let room = width.saturating_sub(GAP.len() * (ncols - 1)).max(ncols);
    let mut want = vec![1usize; ncols];
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            let w = cell.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            want[c] = want[c].max(w);
        }
    }
    let widths = fit_columns(&want, room);
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let cells: Vec<Vec<String>> = (0..ncols)
            .map(|c| wrap(row.get(c).map_or("", String::as_str), widths[c]))
            .collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for i in 0..height {
            let mut line = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if c > 0 {
                    line.push_str(GAP);
                }
                let s = cell.get(i).map_or("", String::as_str);
                line.push_str(s);
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[c] - s.chars().count().min(widths[c]),
                ));
            }
            out.push(line.trim_end().to_string());
        }
        if r == 0 && head && rows.len() > 1 {
            let total = widths.iter().sum::<usize>() + GAP.len() * (ncols - 1);
            out.push("-".repeat(total));
        }
    }
    out
}

/// Column widths within `room`: columns that fit in an equal share keep their width, the
/// rest share what is left.
fn fit_columns(want: &[usize], room: usize) -> Vec<usize> {
    if want.iter().sum::<usize>() <= room {
        return want.to_vec();
    }
    let mut widths = vec![0usize; want.len()];
    let mut open: Vec<usize> = (0..want.len()).collect();
    let mut left = room;
    // Each round fixes the columns narrower than the fair share; at most one round per column.
    loop {
        let share = (left / open.len().max(1)).max(1);
        let (narrow, wide): (Vec<usize>, Vec<usize>) =
            open.iter().partition(|&&c| want[c] <= share);
        if narrow.is_empty() {
            for &c in &wide {
                widths[c] = share;
            }
            break;
        }
        for &c in &narrow {
            widths[c] = want[c];
            left = left.saturating_sub(want[c]);
        }
        open = wide;
        if open.is_empty() {
            break;
        }
    }
    widths
}

/// Word-wraps `text` to lines of at most `width` characters (words longer than that are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        let mut len = 0;
        for word in para.split(' ').filter(|w| !w.is_empty()) {
            let mut word: Vec<char> = word.chars().collect();
            loop {
                let wl = word.len();
                let need = if len == 0 { wl } else { len + 1 + wl };
                if need <= width {
                    if len > 0 {
                        line.push(' ');
                    }
                    line.extend(word.iter());
                    len = need;
                    break;
                }
                if len > 0 {
                    out.push(std::mem::take(&mut line));
                    len = 0;
                    continue;
                }
                let rest = word.split_off(width);
                out.push(word.iter().collect());
                word = rest;
            }
        }
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_cases() {
        let cases = [
            (
                "<p>Hello <b>world</b></p><p>two</p>",
                "Hello world\n\ntwo\n",
            ),
            ("a<br>b<br/>c", "a\nb\nc\n"),
            ("<ul><li>one</li><li>two</li></ul>", "  * one\n  * two\n"),
            ("<ol><li>one<li>two</ol>", "  1. one\n  2. two\n"),
            (
                "<head><title>x</title><style>p{}</style></head>fine",
                "fine\n",
            ),
            ("<script>alert('<b>')</script>ok", "ok\n"),
            (
                "&lt;tag&gt; &amp; &#233;&#x20AC; &bogus; &",
                "<tag> & é€ &bogus; &\n",
            ),
            (
                "<a href=\"https://ex.org/\">site</a>",
                "site <https://ex.org/>\n",
            ),
            ("<img src='http://tracker/x.gif' alt='Logo'>", "[Logo]\n"),
            ("<pre>a  b\n  c</pre>", "a  b\n  c\n"),
            ("x <!-- hidden <p> --> y", "x y\n"),
            ("<a title='>' href=x>t</a>", "t <x>\n"),
            (
                "<blockquote>quoted<br>text</blockquote>",
                "> quoted\n> text\n",
            ),
            ("<h1>Title</h1>text", "Title\n\ntext\n"),
            // Misnested formatting is repaired as a browser does (WHATWG adoption agency).
            (
                "<p><b>bold <i>both</b> italic</i></p>",
                "bold both italic\n",
            ),
        ];
        for (html, want) in cases {
            assert_eq!(to_text(html), want, "{html}");
        }
    }

    #[test]
    fn table_in_columns() {
        let t = to_text(
            "<table><tr><th>Item</th><th>Qty</th></tr>\
             <tr><td>Paper</td><td>12</td></tr><tr><td>Toner cartridge</td><td>1</td></tr></table>",
        );
        assert_eq!(
            t,
            "Item             Qty\n--------------------\nPaper            12\nToner cartridge  1\n"
        );
        // Without a header row and with text too wide for the page: wrapped within columns.
        let long = "word ".repeat(30);
        let t = to_text(&format!(
            "<table><tr><td>{long}</td><td>{long}</td></tr></table>"
        ));
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(t.lines().count() > 2, "{t}");
    }

    #[test]
    fn cid_images_are_blocks_in_place() {
        let b = to_blocks(
            "<p>Before</p><img src=\"cid:part1.ABC%40example.org\" alt=\"Chart\"><p>After</p>",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            b,
            vec![
                Block::Text("Before\n".into()),
                Block::Image {
                    cid: "part1.ABC@example.org".into(),
                    alt: "Chart".into()
                },
                Block::Text("After\n".into()),
            ]
        );
        // In a table cell: the alt text in the cell, the picture after the table.
        let b = to_blocks(
            "<table><tr><td><img src=cid:x alt=X></td><td>y</td></tr></table>z",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(b.len(), 3, "{b:?}");
        assert!(matches!(&b[1], Block::Image { cid, .. } if cid == "x"));
    }

    #[test]
    fn limits_refuse_hostile_trees() {
        let deep = "<div>".repeat(100_000);
        assert_eq!(
            to_blocks(&deep, &Limits::default()),
            Err(HtmlError::TooDeep { limit: 512 })
        );
        let wide = "<br>".repeat(150_000);
        assert_eq!(
            to_blocks(&wide, &Limits::default()),
            Err(HtmlError::TooComplex {
                what: "elements",
                limit: 100_000
            })
        );
        let fmt: String = (0..25_000).map(|i| format!("<b id={i}></b>")).collect();
        assert!(matches!(
            to_blocks(&fmt, &Limits::default()),
            Err(HtmlError::TooComplex {
                what: "formatting elements",
                ..
            })
        ));
        let long = "x".repeat(5 * 1024 * 1024);
        assert!(matches!(
            to_blocks(&long, &Limits::default()),
            Err(HtmlError::TooLong { .. })
        ));
        // Deep but within the limits: converted without recursion.
        let t = to_text(&format!("{}deep", "<div><span>".repeat(250)));
        assert_eq!(t, "deep\n");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,400}") {
            let _ = to_blocks(&s, &Limits::default());
        }

        #[test]
        fn never_panics_on_tag_soup(tags in proptest::collection::vec(
            proptest::sample::select(vec![
                "<table>", "<tr>", "<td>", "</td>", "<th>", "</table>", "<p>", "</p>", "<b>",
                "</b>", "<i id=1>", "<ul>", "<li>", "</ul>", "<ol>", "<pre>", "</pre>", "<br>",
                "<img src=cid:a alt=x>", "<a href=h>", "</a>", "<blockquote>", "x ", "&amp;",
                "<template>", "</template>", "<svg><foreignObject>", "<select><option>",
                "<frameset>", "<!--c-->", "\n", "<hr>", "<script>", "</script>",
            ]),
            0..200,
        )) {
            let h: String = tags.concat();
            let tight = Limits { max_nodes: 50, max_depth: 8, max_formatting: 5, ..Limits::default() };
            let _ = to_blocks(&h, &tight);
            let _ = to_blocks(&h, &Limits::default());
            let _ = to_text(&h);
        }
    }
}
