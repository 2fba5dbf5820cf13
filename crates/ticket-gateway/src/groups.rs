//! The group directory: where a QlikView web server looks up a user's groups when the
//! portal sends none ("the web server will perform a lookup of groups").
//!
//! ```toml
//! [users]
//! 'ACME\jdoe' = ["Sales", "EU"]
//! bob = ["Finance"]
//! ```
//!
//! User ids are matched case-insensitively, as Windows accounts are. The file is read at
//! start-up and again on SIGHUP; a reload that fails keeps the last good directory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::datafile;

/// User id (lowercased) → groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupDirectory {
    users: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: BTreeMap<String, Vec<String>>,
}

impl GroupDirectory {
    /// Reads a directory file. The error is one line naming the file and line.
    pub(crate) fn load(path: &Path) -> Result<GroupDirectory, String> {
        datafile::load(path, GroupDirectory::parse)
    }

    /// Parses directory text.
    pub(crate) fn parse(text: &str) -> Result<GroupDirectory, String> {
        let file: File = datafile::parse(text)?;
        let users = file
            .users
            .into_iter()
            .map(|(user, groups)| {
                let groups = groups
                    .iter()
                    .map(|g| g.trim().to_owned())
                    .filter(|g| !g.is_empty())
                    .collect();
                (user.trim().to_lowercase(), groups)
            })
            .collect();
        Ok(GroupDirectory { users })
    }

    /// The groups of `user_id`; none when the user is not listed.
    pub(crate) fn groups_of(&self, user_id: &str) -> Vec<String> {
        self.users
            .get(&user_id.trim().to_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_users_in_any_casing() {
        let d = GroupDirectory::parse(
            "[users]\n'ACME\\jdoe' = [\"Sales\", \" EU \"]\nbob = [\"Finance\"]\n",
        )
        .unwrap();
        assert_eq!(d.groups_of("acme\\JDOE"), ["Sales", "EU"]);
        assert_eq!(d.groups_of("bob"), ["Finance"]);
        assert!(d.groups_of("carol").is_empty());
    }

    #[test]
    fn a_bad_file_names_the_line() {
        let e = GroupDirectory::parse("[users]\nbob = [\"a\"]\ncarol = 5\n").unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = GroupDirectory::parse("[people]\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
