"""`airgap serve`: a read-only OCI distribution endpoint on a verified bundle or installed site
(routes and ranges, the catalog of verified content, where it comes from, the HTTP server)."""
