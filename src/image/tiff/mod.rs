//! TIFF-F files (RFC 3949): the Profile S/F writer, a reader for any bilevel TIFF, and the
//! profile checker.
