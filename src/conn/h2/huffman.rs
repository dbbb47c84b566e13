//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): decoding header strings a server sent
//! Huffman-coded. The code is canonical (codes of one length are consecutive, in symbol
//! order), so the table is the code length of each symbol; the decoder is a finite-state
//! machine over the code's tree that takes four bits a step, built once from it.
//!
//! Hand-written because it is on the response path of every HTTP/2 request: nginx, for one,
//! Huffman-codes every response header value and asks for each to be indexed, so each
//! response's values are decoded to keep the dynamic table's sizes right.

use std::sync::OnceLock;

/// The code length of each symbol, 0..=255 and EOS (256), from RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

/// The EOS symbol: never valid inside a string.
const EOS: u16 = 256;

/// Each symbol's code (right-aligned) and length, assigned canonically from [`LENGTHS`].
pub(crate) fn codes() -> [(u32, u8); 257] {
    let mut order: Vec<u16> = (0..257).collect();
    order.sort_by_key(|&s| (LENGTHS[s as usize], s));
    let mut out = [(0u32, 0u8); 257];
    let (mut code, mut prev) = (0u32, LENGTHS[order[0] as usize]);
    for (i, &s) in order.iter().enumerate() {
        let len = LENGTHS[s as usize];
        if i > 0 {
            code = (code + 1) << (len - prev);
        }
        prev = len;
        out[s as usize] = (code, len);
    }
    out
}

/// One step of the machine: from a state, four input bits lead to `next`, having emitted
/// `sym` when `EMIT` is set.
#[derive(Clone, Copy, Default)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

const EMIT: u8 = 1;
const FAIL: u8 = 2;

/// The machine: 256 states (the code tree's inner nodes; 0 is the root) × 16 inputs, and
/// which states may end a string (the root, or up to 7 bits of EOS's all-ones prefix).
struct Machine {
    steps: Vec<[Step; 16]>,
    accept: Vec<bool>,
}

fn machine() -> &'static Machine {
    static M: OnceLock<Machine> = OnceLock::new();
    M.get_or_init(build)
}

/// A node of the code tree: an inner node's index, or a leaf's symbol.
#[derive(Clone, Copy)]
enum Node {
    Inner(usize),
    Leaf(u16),
    Empty,
}

fn build() -> Machine {
    // The tree: inner nodes with two children each.
    let mut tree: Vec<[Node; 2]> = vec![[Node::Empty; 2]];
    for (sym, &(code, len)) in codes().iter().enumerate() {
        let mut at = 0;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                tree[at][bit] = Node::Leaf(sym as u16);
            } else {
                at = match tree[at][bit] {
                    Node::Inner(n) => n,
                    _ => {
                        tree.push([Node::Empty; 2]);
                        let n = tree.len() - 1;
                        tree[at][bit] = Node::Inner(n);
                        n
                    }
                };
            }
        }
    }
    assert_eq!(
        tree.len(),
        256,
        "a complete code over 257 symbols has 256 inner nodes"
    );
    // The states that may end a string: on the all-ones path, at most 7 bits deep.
    let mut accept = vec![false; 256];
    accept[0] = true;
    let mut at = 0;
    for _ in 0..7 {
        match tree[at][1] {
            Node::Inner(n) => {
                accept[n] = true;
                at = n;
            }
            _ => break,
        }
    }
    let steps = (0..256)
        .map(|state| {
            let mut row = [Step::default(); 16];
            for (input, step) in row.iter_mut().enumerate() {
                let mut at = state;
                for i in (0..4).rev() {
                    let bit = (input >> i) & 1;
                    match tree[at][bit] {
                        Node::Inner(n) => at = n,
                        Node::Leaf(EOS) | Node::Empty => {
                            step.flags = FAIL;
                            break;
                        }
                        Node::Leaf(s) => {
                            // Codes are 5 bits or more: at most one ends within 4 bits.
                            step.sym = s as u8;
                            step.flags |= EMIT;
                            at = 0;
                        }
                    }
                }
                step.next = at as u8;
            }
            row
        })
        .collect();
    Machine { steps, accept }
}

/// A Huffman-coded string that does not decode: an EOS symbol, or padding that is not up to
/// 7 bits of EOS's prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct BadHuffman;

/// Appends the decoding of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), BadHuffman> {
    let m = machine();
    out.reserve(src.len() * 8 / 5);
    let mut state = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 0xf] {
            let s = m.steps[state][nibble as usize];
            if s.flags & FAIL != 0 {
                return Err(BadHuffman);
            }
            if s.flags & EMIT != 0 {
                out.push(s.sym);
            }
            state = s.next as usize;
        }
    }
    if m.accept[state] {
        Ok(())
    } else {
        Err(BadHuffman)
    }
}

#[cfg(test)]
pub(crate) fn encode(src: &[u8]) -> Vec<u8> {
    let codes = codes();
    let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
    for &b in src {
        let (code, len) = codes[b as usize];
        acc = (acc << len) | code as u64;
        bits += len as u32;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        // Padding: EOS's most significant bits (all ones).
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 7541 Appendix B's codes for a few symbols, and C.4's examples.
    #[test]
    fn the_rfcs_codes_and_examples() {
        let c = codes();
        assert_eq!(c[b'0' as usize], (0x0, 5));
        assert_eq!(c[b'a' as usize], (0x3, 5));
        assert_eq!(c[b' ' as usize], (0x14, 6));
        assert_eq!(c[0], (0x1ff8, 13));
        assert_eq!(c[255], (0x3ffffee, 26));
        assert_eq!(c[256], (0x3fffffff, 30));
        for (text, coded) in [
            ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
            ("no-cache", "a8eb 1064 9cbf"),
            ("custom-key", "25a8 49e9 5ba9 7d7f"),
            ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
            ("302", "6402"),
            ("private", "aec3 771a 4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            ),
            (
                "https://www.example.com",
                "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            ),
        ] {
            let mut out = Vec::new();
            decode(&hex(coded), &mut out).unwrap();
            assert_eq!(out, text.as_bytes());
            assert_eq!(encode(text.as_bytes()), hex(coded));
        }
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        let mut out = Vec::new();
        // 'a' (00011) then 3 zero bits of padding.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(BadHuffman));
        // 'a' then a whole byte of ones: 8 bits of padding.
        assert_eq!(decode(&[0b0001_1111, 0xff], &mut out), Err(BadHuffman));
        // EOS itself (30 ones) and 2 bits of padding.
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], &mut out), Err(BadHuffman));
        out.clear();
        assert_eq!(decode(&[], &mut out), Ok(()));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn any_bytes_survive_a_round_trip(s in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            decode(&encode(&s), &mut out).unwrap();
            prop_assert_eq!(out, s);
        }
    }
}
