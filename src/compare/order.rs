//! Which items of a list moved: those outside a longest common subsequence of the items both
//! revisions have. A reorder is reported as the items that moved, never as removed + added.

/// The items present in both lists that moved, with their 1-based positions in each list.
pub fn moved<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(&'a str, usize, usize)> {
    let common_old: Vec<&str> = old.iter().copied().filter(|k| new.contains(k)).collect();
    let common_new: Vec<&str> = new.iter().copied().filter(|k| old.contains(k)).collect();
    let kept = lcs(&common_old, &common_new);
    common_new
        .iter()
        .filter(|k| !kept.contains(k))
        .map(|k| {
            let from = old.iter().position(|o| o == k).unwrap_or(0) + 1;
            let to = new.iter().position(|n| n == k).unwrap_or(0) + 1;
            (*k, from, to)
        })
        .collect()
}

/// A longest common subsequence (dynamic programming; lists here are short).
fn lcs<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    let mut table = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i][j] = if a[i] == b[j] { table[i + 1][j + 1] + 1 } else { table[i + 1][j].max(table[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reorder_is_the_items_that_moved() {
        assert_eq!(moved(&["a", "b", "c"], &["a", "b", "c"]), vec![]);
        assert_eq!(moved(&["a", "b", "c"], &["c", "a", "b"]), vec![("c", 3, 1)]);
        assert_eq!(moved(&["a", "b", "c", "d"], &["b", "a", "d", "c"]).len(), 2);
        // Added and removed items are not moves.
        assert_eq!(moved(&["a", "x", "b"], &["a", "b", "y"]), vec![]);
    }
}
