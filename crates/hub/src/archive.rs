//! Zip archives (the `zip` crate): the members of a `torch.save` file, a PyPI wheel's file.

use std::io::Read;

/// Every member of the zip archive `data`, in archive order: name and contents (stored or
/// deflated). For small archives read whole, such as `torch.save` files of embeddings.
pub fn zip_members(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    (0..zip.len())
        .map(|i| {
            let mut f = zip
                .by_index(i)
                .map_err(|e| format!("zip member {i}: {e}"))?;
            let name = f
                .name()
                .map_err(|e| format!("zip member {i}: {e}"))?
                .to_string();
            let mut out = Vec::with_capacity(f.size() as usize);
            f.read_to_end(&mut out)
                .map_err(|e| format!("zip member `{name}`: {e}"))?;
            Ok((name, out))
        })
        .collect()
}
