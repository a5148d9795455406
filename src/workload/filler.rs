//! The filler words of synthetic prompts, copied a run at a time rather than pushed one
//! by one: word `k` of item `i` is word `(i + 7k) mod n` of the list, so an item's filler
//! walks the list in steps of 7, and every item's walk is one stretch of the same cycle.
//! The cycle is laid out once as text, and an item's filler is one or a few copies of it.

use std::sync::LazyLock;

/// Words the synthetic prompts are made of. Each is one token under the mock's
/// one-token-per-word count.
pub const PROMPT_WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

/// The step between an item's consecutive filler words.
const STEP: usize = 7;

// A step sharing no factor with the list's length visits every word once per cycle.
const _: () = assert!(gcd(PROMPT_WORDS.len(), STEP) == 1);

const fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The cycle of steps laid out twice as text, every word after a space, so that any
/// stretch of up to one cycle is a single slice.
struct Cycle {
    text: String,
    /// Where the cycle's word `j` starts in `text`, for `j` in `0..=2n`.
    starts: Vec<usize>,
    /// Where word `w` of the list is in the cycle.
    position: Vec<usize>,
}

static CYCLE: LazyLock<Cycle> = LazyLock::new(|| {
    let n = PROMPT_WORDS.len();
    let mut cycle = Cycle {
        text: String::new(),
        starts: Vec::with_capacity(2 * n + 1),
        position: vec![0; n],
    };
    for j in 0..2 * n {
        let word = (j * STEP) % n;
        if j < n {
            cycle.position[word] = j;
        }
        cycle.starts.push(cycle.text.len());
        cycle.text.push(' ');
        cycle.text.push_str(PROMPT_WORDS[word]);
    }
    cycle.starts.push(cycle.text.len());
    cycle
});

/// Appends words `from..to` of item `index`'s filler, each after a space.
pub fn push(text: &mut String, index: u32, from: usize, to: usize) {
    let Some(count) = to.checked_sub(from).filter(|&count| count > 0) else {
        return;
    };
    let cycle = &*CYCLE;
    let n = PROMPT_WORDS.len();
    let first = (index as usize % n + from % n * STEP) % n;
    let start = cycle.position[first];
    let stretch = |words: usize| &cycle.text[cycle.starts[start]..cycle.starts[start + words]];
    for _ in 0..count / n {
        text.push_str(stretch(n));
    }
    text.push_str(stretch(count % n));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filler word by word, as it was first written.
    fn word_by_word(index: u32, from: usize, to: usize) -> String {
        let mut text = String::new();
        for k in from..to {
            text.push(' ');
            text.push_str(PROMPT_WORDS[(index as usize + k * STEP) % PROMPT_WORDS.len()]);
        }
        text
    }

    #[test]
    fn runs_are_the_words_one_by_one() {
        for index in [0, 1, 7, 25, 26, 27, 1_000_003, u32::MAX] {
            for from in [0, 1, 5, 26, 100] {
                for count in [0, 1, 2, 15, 25, 26, 27, 52, 60, 1_000] {
                    let mut text = String::new();
                    push(&mut text, index, from, from + count);
                    assert_eq!(
                        text,
                        word_by_word(index, from, from + count),
                        "{index} {from} {count}"
                    );
                }
            }
        }
    }
}
