//! Keyset paging over UUIDv7 ids: a page is "rows after this id", which stays
//! correct while rows are added or deleted between pages (unlike OFFSET).

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The last id of the previous page; `None` for the first page.
    pub after: Option<String>,
    pub size: usize,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Whether rows remain after the last item.
    pub has_more: bool,
}

impl PageRequest {
    /// Rows to fetch: one more than the page, to learn whether another follows.
    pub(crate) fn fetch_limit(&self) -> i64 {
        i64::try_from(self.size).unwrap_or(i64::MAX - 1) + 1
    }

    pub(crate) fn finish<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let has_more = rows.len() > self.size;
        rows.truncate(self.size);
        Page { items: rows, has_more }
    }
}
