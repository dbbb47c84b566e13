//! HPACK (RFC 7541) for loadgen's HTTP/2 client: decoding the header blocks of responses,
//! and encoding a request's header block once, to be sent as it is with every request.
//!
//! - **Decoding** keeps the dynamic table the server's encoder expects (4096 bytes, the
//!   protocol's default, and the size updates the server signals within it). Only what is
//!   needed is decoded: `:status` always, every field when a script reads the headers, and
//!   the fields the server asks to be indexed (to keep the table). Fields the server sends
//!   without indexing are skipped unread when nobody reads them.
//! - **Encoding** is done once per request, not per send, without Huffman coding ([`Blocks`]):
//!   a *plain* block of literals never added to a table (static-table names by index), which
//!   any connection may send whatever its state; and, for the run's own request, a *first*
//!   block that asks the server to index the fields the static table does not hold whole, and
//!   a *steady* block of one-byte references to them, which a connection sends from its
//!   second request on (as h2load's and browsers' encoders do: the server then decodes a few
//!   bytes a request instead of every literal).
//!
//! Hand-written, as the rest of the client (see `super`): on every response of an HTTP/2
//! run.

use std::collections::VecDeque;

use super::huffman;

/// The static table (RFC 7541 Appendix A), index 1..=61.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The dynamic table's size the client allows (SETTINGS_HEADER_TABLE_SIZE: the default).
pub const TABLE_SIZE: usize = 4096;

/// A header block that does not decode (a COMPRESSION_ERROR, RFC 9113 §4.3).
#[derive(Debug, PartialEq, Eq)]
pub enum HpackError {
    /// It ends inside a field.
    Truncated,
    /// An integer overflows.
    Integer,
    /// An index beyond the tables.
    Index(usize),
    /// A size update above the allowed size, or after the block's first field.
    SizeUpdate(usize),
    /// A Huffman-coded string that does not decode.
    Huffman,
    /// A `:status` that is not three digits.
    Status,
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::Truncated => write!(f, "a header block ends inside a field"),
            HpackError::Integer => write!(f, "a header block's integer overflows"),
            HpackError::Index(i) => write!(f, "a header block names index {i}, beyond the tables"),
            HpackError::SizeUpdate(s) => {
                write!(f, "a header block's table size update ({s}) is not allowed")
            }
            HpackError::Huffman => {
                write!(f, "a header block's Huffman-coded string does not decode")
            }
            HpackError::Status => write!(f, "a response's :status is not three digits"),
        }
    }
}

/// Reads an integer with an `n`-bit prefix (RFC 7541 §5.1) at `buf[*at..]`.
fn integer(buf: &[u8], at: &mut usize, n: u8) -> Result<usize, HpackError> {
    let mask = (1u8 << n) - 1;
    let first = *buf.get(*at).ok_or(HpackError::Truncated)? & mask;
    *at += 1;
    if first < mask {
        return Ok(first as usize);
    }
    let mut v = mask as usize;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        if shift > 28 {
            return Err(HpackError::Integer);
        }
        v += ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// Appends an integer with an `n`-bit prefix, the prefix byte's other bits `flags`.
pub fn put_integer(out: &mut Vec<u8>, flags: u8, n: u8, v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut v = v - mask;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a string literal, not Huffman-coded.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Appends a field as a literal never indexed (RFC 7541 §6.2.3), by the static table's index
/// of its name when there is one. `name` is lower case.
pub fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match STATIC.iter().position(|(n, _)| n.as_bytes() == name) {
        Some(i) => put_integer(out, 0x10, 4, i + 1),
        None => {
            out.push(0x10);
            put_string(out, name);
        }
    }
    put_string(out, value);
}

/// Appends a field by its static-table index when the table holds it whole, else as
/// [`put_field`] does.
pub fn put_field_indexed(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match static_index(name, value) {
        Some(i) => put_integer(out, 0x80, 7, i),
        None => put_field(out, name, value),
    }
}

/// The static table's index of the field (`name`, `value`) when it holds it whole.
fn static_index(name: &[u8], value: &[u8]) -> Option<usize> {
    STATIC
        .iter()
        .position(|(n, v)| n.as_bytes() == name && v.as_bytes() == value)
        .map(|i| i + 1)
}

/// One request's header blocks (see the module's doc).
#[derive(Debug, Clone, Default)]
pub struct Blocks {
    /// Literals, never indexed.
    pub plain: Vec<u8>,
    /// The fields the static table lacks as literals with incremental indexing.
    pub first: Vec<u8>,
    /// The same fields as references to the entries `first` added.
    pub steady: Vec<u8>,
    /// The dynamic table size `first` takes (RFC 7541 §4.1).
    pub table: usize,
}

impl Blocks {
    /// The blocks of `fields` (lower-case names, pseudo-fields first).
    pub fn new<'a>(fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Blocks {
        let mut b = Blocks::default();
        // Each field's static index, or `None` for one `first` adds to the table.
        let mut reps = Vec::new();
        for (name, value) in fields {
            if let Some(i) = static_index(name, value) {
                put_integer(&mut b.plain, 0x80, 7, i);
                put_integer(&mut b.first, 0x80, 7, i);
                reps.push(Some(i));
                continue;
            }
            put_field(&mut b.plain, name, value);
            match STATIC.iter().position(|(n, _)| n.as_bytes() == name) {
                Some(i) => put_integer(&mut b.first, 0x40, 6, i + 1),
                None => {
                    b.first.push(0x40);
                    put_string(&mut b.first, name);
                }
            }
            put_string(&mut b.first, value);
            b.table += name.len() + value.len() + 32;
            reps.push(None);
        }
        // The newest entry is index 62: the last field `first` added.
        let added = reps.iter().filter(|r| r.is_none()).count();
        let mut k = 0;
        for r in reps {
            let i = r.unwrap_or_else(|| {
                k += 1;
                62 + added - k
            });
            put_integer(&mut b.steady, 0x80, 7, i);
        }
        b
    }
}

/// A string of a header block: where its bytes are and whether they are Huffman-coded.
struct Str {
    huffman: bool,
    start: usize,
    end: usize,
}

fn string(buf: &[u8], at: &mut usize) -> Result<Str, HpackError> {
    let huffman = *buf.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(buf, at, 7)?;
    let start = *at;
    let end = start.checked_add(len).ok_or(HpackError::Truncated)?;
    if end > buf.len() {
        return Err(HpackError::Truncated);
    }
    *at = end;
    Ok(Str {
        huffman,
        start,
        end,
    })
}

/// Appends a string's bytes, decoded.
fn put_decoded(buf: &[u8], s: &Str, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let raw = &buf[s.start..s.end];
    if s.huffman {
        huffman::decode(raw, out).map_err(|_| HpackError::Huffman)
    } else {
        out.extend_from_slice(raw);
        Ok(())
    }
}

/// A dynamic table entry: name and value in one buffer (reused when evicted).
struct Entry {
    bytes: Vec<u8>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.bytes[..self.name_len]
    }
    fn value(&self) -> &[u8] {
        &self.bytes[self.name_len..]
    }
    /// Its size by RFC 7541 §4.1.
    fn size(&self) -> usize {
        self.bytes.len() + 32
    }
}

/// A connection's HPACK decoder.
pub struct Decoder {
    /// Newest first.
    table: VecDeque<Entry>,
    size: usize,
    /// The size the server's encoder uses now (its last size update).
    max: usize,
    /// Evicted entries' buffers, reused.
    spare: Vec<Vec<u8>>,
    /// A literal name's or value's decoding.
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: TABLE_SIZE,
            spare: Vec::new(),
            name: Vec::new(),
            value: Vec::new(),
        }
    }
}

/// The field at index `i` of the static table and the dynamic table `table`.
fn lookup(table: &VecDeque<Entry>, i: usize) -> Result<(&[u8], &[u8]), HpackError> {
    match i {
        0 => Err(HpackError::Index(0)),
        1..=61 => {
            let (n, v) = STATIC[i - 1];
            Ok((n.as_bytes(), v.as_bytes()))
        }
        _ => table
            .get(i - 62)
            .map(|e| (e.name(), e.value()))
            .ok_or(HpackError::Index(i)),
    }
}

impl Decoder {
    /// Decodes one header block: returns its `:status` (0 if none), and gives every field to
    /// `field` (in order, `:status` included) when `all` is set.
    pub fn decode(
        &mut self,
        buf: &[u8],
        all: bool,
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<u16, HpackError> {
        let mut at = 0;
        let mut status = 0u16;
        let mut first = true;
        while at < buf.len() {
            let b = buf[at];
            if b & 0x80 != 0 {
                let i = integer(buf, &mut at, 7)?;
                let (n, v) = self.get(i)?;
                if n == b":status" {
                    status = parse_status(v)?;
                }
                if all {
                    field(n, v);
                }
            } else if b & 0xe0 == 0x20 {
                let size = integer(buf, &mut at, 5)?;
                if !first || size > TABLE_SIZE {
                    return Err(HpackError::SizeUpdate(size));
                }
                self.max = size;
                self.evict_to(size);
                continue;
            } else {
                // A literal: with incremental indexing (01), without (0000) or never (0001).
                let (prefix, index) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let i = integer(buf, &mut at, prefix)?;
                self.name.clear();
                if i == 0 {
                    let s = string(buf, &mut at)?;
                    put_decoded(buf, &s, &mut self.name)?;
                } else {
                    let (n, _) = lookup(&self.table, i)?;
                    // A name from the tables is copied only when it is needed.
                    if index || all || n == b":status" {
                        self.name.extend_from_slice(n);
                    }
                }
                let value = string(buf, &mut at)?;
                let is_status = self.name == b":status";
                if index || all || is_status {
                    self.value.clear();
                    put_decoded(buf, &value, &mut self.value)?;
                    if is_status {
                        status = parse_status(&self.value)?;
                    }
                    if all {
                        field(&self.name, &self.value);
                    }
                    if index {
                        self.insert();
                    }
                }
            }
            first = false;
        }
        Ok(status)
    }

    /// The field at index `i` of the static and dynamic tables.
    fn get(&self, i: usize) -> Result<(&[u8], &[u8]), HpackError> {
        lookup(&self.table, i)
    }

    /// Adds the decoded `name` and `value` to the dynamic table (RFC 7541 §4.4): an entry
    /// larger than the table empties it.
    fn insert(&mut self) {
        let size = self.name.len() + self.value.len() + 32;
        if size > self.max {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - size);
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(&self.name);
        bytes.extend_from_slice(&self.value);
        self.size += size;
        self.table.push_front(Entry {
            bytes,
            name_len: self.name.len(),
        });
    }

    /// Evicts the oldest entries until the table's size is at most `limit`.
    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            let e = self
                .table
                .pop_back()
                .expect("a table of size > 0 has entries");
            self.size -= e.size();
            self.spare.push(e.bytes);
        }
    }
}

fn parse_status(v: &[u8]) -> Result<u16, HpackError> {
    match v {
        [a, b, c] if v.iter().all(u8::is_ascii_digit) => {
            Ok((*a - b'0') as u16 * 100 + (*b - b'0') as u16 * 10 + (*c - b'0') as u16)
        }
        _ => Err(HpackError::Status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fields(d: &mut Decoder, block: &[u8]) -> (u16, Vec<(String, String)>) {
        let mut out = Vec::new();
        let status = d
            .decode(block, true, |n, v| {
                out.push((
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        (status, out)
    }

    /// RFC 7541 C.6: three responses with Huffman coding and a 256-byte table, decoded in
    /// turn (evictions included).
    #[test]
    fn the_rfcs_responses_with_huffman_coding() {
        let mut d = Decoder::default();
        d.decode(&[0x3f, 0xe1, 0x01], false, |_, _| {}).unwrap(); // size update to 256
        assert_eq!(d.max, 256);
        let (s, f) = fields(
            &mut d,
            &hex("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
        );
        assert_eq!(s, 302);
        assert_eq!(f[0], (":status".into(), "302".into()));
        assert_eq!(f[1], ("cache-control".into(), "private".into()));
        assert_eq!(
            f[2],
            ("date".into(), "Mon, 21 Oct 2013 20:13:21 GMT".into())
        );
        assert_eq!(f[3], ("location".into(), "https://www.example.com".into()));
        assert_eq!(d.size, 222);
        let (s, f) = fields(&mut d, &hex("4883 640e ffc1 c0bf"));
        assert_eq!(s, 307);
        assert_eq!(f.len(), 4);
        assert_eq!(f[3], ("location".into(), "https://www.example.com".into()));
        assert_eq!(d.size, 222);
        let (s, f) = fields(
            &mut d,
            &hex("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"),
        );
        assert_eq!(s, 200);
        assert_eq!(
            f[2],
            ("date".into(), "Mon, 21 Oct 2013 20:13:22 GMT".into())
        );
        assert_eq!(f[4], ("content-encoding".into(), "gzip".into()));
        assert_eq!(
            f[5],
            (
                "set-cookie".into(),
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1".into()
            )
        );
        assert_eq!(d.size, 215);
        assert_eq!(d.table.len(), 3);
    }

    /// Without `all`, only `:status` is read, and the table is kept all the same.
    #[test]
    fn status_alone_keeps_the_table() {
        let mut d = Decoder::default();
        let block = hex("4882 6402 5885 aec3 771a 4b");
        assert_eq!(d.decode(&block, false, |_, _| panic!()).unwrap(), 302);
        assert_eq!(d.table.len(), 2);
        // Indexed from the dynamic table: :status 302 is entry 63 (older than cache-control).
        assert_eq!(d.decode(&[0xbf], false, |_, _| {}).unwrap(), 302);
        // A literal :status by a literal name, not indexed.
        let mut b = vec![0x00];
        put_string(&mut b, b":status");
        put_string(&mut b, b"503");
        assert_eq!(d.decode(&b, false, |_, _| {}).unwrap(), 503);
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(&[0x80], false, |_, _| {}),
            Err(HpackError::Index(0))
        );
        assert_eq!(
            d.decode(&[0xbe], false, |_, _| {}),
            Err(HpackError::Index(62))
        );
        assert_eq!(
            d.decode(&[0x44, 0x05, b'a'], false, |_, _| {}),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            d.decode(&[0x88, 0x20], false, |_, _| {}),
            Err(HpackError::SizeUpdate(0))
        );
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x1f], false, |_, _| {}),
            Err(HpackError::SizeUpdate(4097))
        );
        assert_eq!(
            d.decode(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                false,
                |_, _| {}
            ),
            Err(HpackError::Integer)
        );
    }

    /// A request's first block fills the server's table so that its steady block decodes to
    /// the same fields, again and again.
    #[test]
    fn first_and_steady_blocks_decode_to_the_plain_fields() {
        let req: [(&[u8], &[u8]); 5] = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"h:8443"),
            (b":path", b"/x"),
            (b"x-custom", b"v"),
        ];
        let b = Blocks::new(req);
        assert_eq!(b.table, (10 + 6 + 32) + (5 + 2 + 32) + (8 + 1 + 32));
        assert_eq!(b.steady, [0x82, 0x87, 0x80 | 64, 0x80 | 63, 0x80 | 62]);
        let decoded = |d: &mut Decoder, block: &[u8]| fields(d, block).1;
        let want: Vec<(String, String)> = req
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        let mut server = Decoder::default();
        assert_eq!(decoded(&mut server, &b.first), want);
        assert_eq!(decoded(&mut server, &b.steady), want);
        assert_eq!(decoded(&mut server, &b.steady), want);
        assert_eq!(decoded(&mut Decoder::default(), &b.plain), want);
        assert_eq!(server.size, b.table);
    }

    /// A request's block, decoded back (RFC 7541 C.3.1's fields).
    #[test]
    fn request_blocks_decode_to_their_fields() {
        let mut b = Vec::new();
        put_field_indexed(&mut b, b":method", b"GET");
        put_field_indexed(&mut b, b":scheme", b"http");
        put_field_indexed(&mut b, b":path", b"/");
        put_field_indexed(&mut b, b":authority", b"www.example.com");
        put_field(&mut b, b"x-long", &[b'x'; 300]);
        assert_eq!(&b[..4], &[0x82, 0x86, 0x84, 0x11]);
        let mut d = Decoder::default();
        let (_, f) = fields(&mut d, &b);
        assert_eq!(f[3], (":authority".into(), "www.example.com".into()));
        assert_eq!(f[4].1.len(), 300);
        assert!(d.table.is_empty());
    }
}
