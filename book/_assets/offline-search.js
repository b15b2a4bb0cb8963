// Search works from the prebuilt index (searchindex.js), with no server and no
// network. For each hit, Sphinx's search also fetch()es the page to show a
// snippet; a browser refuses fetch() on file:// pages, which would log an
// error per hit. Opened straight from disk, show the titles only.
if (window.location.protocol === "file:" && typeof DOCUMENTATION_OPTIONS !== "undefined") {
  DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false;
}
