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
        $crate::text_enum::text_enum!(@serde $name);
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
        $crate::text_enum::text_enum!(@serde $name);
    };
    // As text in serialized form too (replicas hand outcomes to each other).
    (@serde $name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}
pub(crate) use text_enum;
