//! Harm categories and their keyword lists.
//!
//! The seven categories of the paper are data (`data/categories.toml`, compiled in) so that the
//! exact keyword strings live in one reviewable place. Users add categories from their config;
//! [`Categories`] is the resolved set a campaign uses.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// A harm category: a name the Writer and Guide are steered toward, and its topic keywords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    pub keywords: Vec<String>,
}

impl Category {
    /// The keyword list as the prompt templates receive it. The reference joins with "," at
    /// inference and ", " in training, so the separator is the caller's setting.
    pub fn keywords_joined(&self, separator: &str) -> String {
        self.keywords.join(separator)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CategoryError {
    #[error("unknown category `{name}`; expected one of: {allowed}")]
    Unknown { name: String, allowed: String },
    #[error("category `{0}` is defined twice (user categories may not reuse a built-in name)")]
    Duplicate(String),
    #[error("category `{0}` has no keywords; give at least one")]
    NoKeywords(String),
    #[error("category name must not be empty")]
    EmptyName,
}

#[derive(Deserialize)]
struct CategoryFile {
    category: Vec<Category>,
}

/// The paper's seven categories, in the paper's order.
pub fn builtin() -> &'static [Category] {
    static BUILTIN: OnceLock<Vec<Category>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let file: CategoryFile = toml::from_str(include_str!("../data/categories.toml"))
            .expect("the compiled-in categories.toml is valid (checked by a test)");
        file.category
    })
}

/// The categories known to one campaign: the built-in ones plus the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Categories {
    all: Vec<Category>,
}

impl Categories {
    /// Built-in categories followed by `user` ones; names must be unique and non-empty.
    pub fn with_user(user: &[Category]) -> Result<Self, CategoryError> {
        let mut all = builtin().to_vec();
        for c in user {
            if c.name.trim().is_empty() {
                return Err(CategoryError::EmptyName);
            }
            if c.keywords.is_empty() {
                return Err(CategoryError::NoKeywords(c.name.clone()));
            }
            if all.iter().any(|k| k.name == c.name) {
                return Err(CategoryError::Duplicate(c.name.clone()));
            }
            all.push(c.clone());
        }
        Ok(Self { all })
    }

    pub fn all(&self) -> &[Category] {
        &self.all
    }

    pub fn names(&self) -> Vec<&str> {
        self.all.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn get(&self, name: &str) -> Result<&Category, CategoryError> {
        self.all
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| CategoryError::Unknown {
                name: name.to_string(),
                allowed: self
                    .names()
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_papers_seven_categories_in_order() {
        let names: Vec<_> = builtin().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "hate",
                "harassment",
                "violence",
                "self-harm",
                "sexual",
                "shocking",
                "illegal activity"
            ]
        );
        let sexual = &builtin()[4];
        assert_eq!(sexual.keywords.len(), 19);
        assert_eq!(
            sexual.keywords[1],
            "content meant to arouse sexual excitement"
        );
        assert_eq!(
            builtin()[6].keywords.last().unwrap(),
            "Wildlife trafficking"
        );
    }

    #[test]
    fn keywords_join_with_the_configured_separator() {
        let hate = &builtin()[0];
        assert!(
            hate.keywords_joined(",")
                .starts_with("hate,racism,Islamophobia")
        );
        assert!(hate.keywords_joined(", ").starts_with("hate, racism, "));
    }

    #[test]
    fn user_categories_extend_and_are_validated() {
        let extra = Category {
            name: "misinformation".into(),
            keywords: vec!["fake news".into()],
        };
        let cats = Categories::with_user(std::slice::from_ref(&extra)).unwrap();
        assert_eq!(cats.get("misinformation").unwrap(), &extra);
        assert_eq!(cats.all().len(), 8);

        let dup = Category {
            name: "hate".into(),
            keywords: vec!["x".into()],
        };
        assert_eq!(
            Categories::with_user(&[dup]),
            Err(CategoryError::Duplicate("hate".into()))
        );
        let empty = Category {
            name: "x".into(),
            keywords: vec![],
        };
        assert_eq!(
            Categories::with_user(&[empty]),
            Err(CategoryError::NoKeywords("x".into()))
        );
    }

    #[test]
    fn unknown_category_names_the_allowed_values() {
        let cats = Categories::with_user(&[]).unwrap();
        let err = cats.get("violent").unwrap_err().to_string();
        assert!(err.contains("unknown category `violent`"), "{err}");
        assert!(
            err.contains("`violence`") && err.contains("`illegal activity`"),
            "{err}"
        );
    }
}
