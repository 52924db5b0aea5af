"""One module per command, named after it: each takes parsed arguments, calls the stages and returns
a typed result that packager.cli renders. The site commands (install, list, uninstall, rollback, gc)
are the site stage's own, in packager.site; probe is packager.probe's (stdlib only)."""
