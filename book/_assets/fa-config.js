// Load before the theme's deferred Font Awesome 6 script.
// The theme replaces every <i class="fa ..."> with an <svg>. ipywidgets' Play
// button looks up its <i> element to switch the play/pause icon, so without
// this setting clicking Play throws a TypeError and does nothing. "nest" keeps
// the <i> and puts the <svg> inside it (widgets-fa.css then hides the copy).
window.FontAwesomeConfig = { autoReplaceSvg: "nest" };
