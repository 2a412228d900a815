//! "Did you mean …?" for misspelled names.

/// The closest candidate to `typo`, when it is close enough to be a likely misspelling.
pub fn closest<'a>(typo: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typo_lower = typo.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::levenshtein(&typo_lower, &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|&(distance, candidate)| {
            // Allow roughly one edit per three characters, at least one, at most three.
            let allowed = (candidate.chars().count().max(typo.chars().count()) / 3).clamp(1, 3);
            distance <= allowed
        })
        .min_by_key(|&(distance, candidate)| (distance, candidate))
        .map(|(_, candidate)| candidate)
}

/// A help line: "did you mean `x`?" when one is close, else the list of valid names.
pub fn help_for<'a>(what: &str, typo: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    if let Some(best) = closest(typo, candidates.iter().copied()) {
        return format!("did you mean `{best}`?");
    }
    match candidates.len() {
        0 => format!("this plan defines no {what}s"),
        1..=8 => format!(
            "the {what}s in this plan are: {}",
            candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        ),
        n => format!("this plan defines {n} {what}s; none is spelled like `{typo}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_names_only() {
        assert_eq!(closest("sq01", ["sql01", "app01"]), Some("sql01"));
        assert_eq!(closest("timout", ["timeout", "retries"]), Some("timeout"));
        assert_eq!(closest("zzz", ["sql01", "app01"]), None);
        assert_eq!(closest("DC1", ["dc1"]), Some("dc1"));
    }

    #[test]
    fn help_lists_names_when_nothing_is_close() {
        assert_eq!(help_for("site", "xyz", ["dc1", "dc2"]), "the sites in this plan are: `dc1`, `dc2`");
        assert_eq!(help_for("site", "dc3", ["dc1", "dc2"]), "did you mean `dc1`?");
    }
}
