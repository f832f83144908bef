//! Enums stored and sent as lowercase text (message roles and statuses,
//! failure codes, cancel reasons): one definition of each spelling, read
//! back without failing on a value a newer server wrote.

/// `text_enum!(Name { Variant => "text", ... })` adds an `Unknown` variant
/// for text it does not know; `text_enum!(Name { ... } else Variant)` reads
/// unknown text as that variant instead.
macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant,)+ Unknown }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ Self::Unknown => "unknown" }
            }

            pub fn parse(text: &str) -> Self {
                match text { $($text => Self::$variant,)+ _ => Self::Unknown }
            }
        }
    };
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? } else $fallback:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant,)+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            pub fn parse(text: &str) -> Self {
                match text { $($text => Self::$variant,)+ _ => Self::$fallback }
            }
        }
    };
}
pub(crate) use text_enum;
