//! Reading flow files from disk into a `Library`, with the sub-flows beside them.

use std::path::{Path, PathBuf};

use flows::{Flow, Library, LoadError};

/// A flow file that was read, or why not.
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub flow: Result<Flow, String>,
}

pub fn load(path: &Path) -> Loaded {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let flow = flows::from_json(&text).map_err(|e: LoadError| e.to_string());
            Loaded {
                path: path.to_owned(),
                text,
                flow,
            }
        }
        Err(e) => Loaded {
            path: path.to_owned(),
            text: String::new(),
            flow: Err(format!("cannot read the file: {e}")),
        },
    }
}

/// A library of the given flows plus every other readable `*.flow.json` in their folders,
/// so that `call` nodes find their sub-flows. The given files win over their neighbours.
pub fn library_for(loaded: &[Loaded]) -> Library {
    library_of(loaded, &neighbours(loaded))
}

/// The library [`library_for`] builds, from the neighbours already read.
pub fn library_of(loaded: &[Loaded], neighbours: &[Loaded]) -> Library {
    let mut library = Library::new();
    for l in neighbours.iter().chain(loaded) {
        if let Ok(flow) = &l.flow {
            library.insert(flow.clone());
        }
    }
    library
}

/// Every readable flow file (`*.flow.json`) in the folders of `loaded`, by folder and name:
/// where sub-flows are looked for.
pub fn neighbours(loaded: &[Loaded]) -> Vec<Loaded> {
    let mut folders: Vec<PathBuf> = loaded
        .iter()
        .map(|l| l.path.parent().map(Path::to_owned).unwrap_or_default())
        .collect();
    folders.sort();
    folders.dedup();
    let mut found = Vec::new();
    for folder in folders {
        let folder = if folder.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            folder
        };
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.to_string_lossy().ends_with(".flow.json") {
                let neighbour = load(&path);
                if neighbour.flow.is_ok() {
                    found.push(neighbour);
                }
            }
        }
    }
    found
}

/// The file that flow `id` came from in [`library_of`]`(loaded, neighbours)`: the given files
/// first, then the neighbour read last.
pub fn source_of<'a>(
    id: &str,
    loaded: &'a [Loaded],
    neighbours: &'a [Loaded],
) -> Option<&'a Loaded> {
    let has = |l: &&Loaded| l.flow.as_ref().is_ok_and(|f| f.id == id);
    loaded
        .iter()
        .rev()
        .find(has)
        .or_else(|| neighbours.iter().rev().find(has))
}

/// The 1-based line on which node `id` is declared in `text` (its `"id"` inside an element of
/// the top-level `"nodes"` array), to point editors at it. A small scan of the JSON structure,
/// so that option and branch ids of the same name are not mistaken for the node.
pub fn node_line(text: &str, id: &str) -> Option<usize> {
    #[derive(PartialEq)]
    enum Container {
        Other,
        NodesArray,
        NodeObject,
    }
    let mut stack: Vec<Container> = Vec::new();
    let mut key: Option<String> = None;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' => {
                let start_line = line;
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                s.push(escaped);
                            }
                        }
                        '"' => break,
                        other => s.push(other),
                    }
                }
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    if chars.next() == Some('\n') {
                        line += 1;
                    }
                }
                if chars.peek() == Some(&':') {
                    key = Some(s);
                } else {
                    if key.as_deref() == Some("id")
                        && stack.last() == Some(&Container::NodeObject)
                        && s == id
                    {
                        return Some(start_line);
                    }
                    key = None;
                }
            }
            '[' => {
                let nodes = stack.len() == 1 && key.as_deref() == Some("nodes");
                stack.push(if nodes {
                    Container::NodesArray
                } else {
                    Container::Other
                });
                key = None;
            }
            '{' => {
                let node = stack.last() == Some(&Container::NodesArray);
                stack.push(if node {
                    Container::NodeObject
                } else {
                    Container::Other
                });
                key = None;
            }
            '}' | ']' => {
                stack.pop();
            }
            ',' => key = None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::node_line;

    #[test]
    fn finds_the_node_not_a_branch_of_the_same_name() {
        let text = "{\n \"nodes\": [\n  {\"id\": \"a\", \"branches\": [{\"id\": \"b\"}]},\n  {\n   \"id\": \"b\"}\n ]\n}";
        assert_eq!(node_line(text, "b"), Some(5));
        assert_eq!(node_line(text, "a"), Some(3));
        assert_eq!(node_line(text, "c"), None);
    }
}
