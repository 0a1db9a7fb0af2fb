// "Print this page": a button marked data-app-print is hidden in the HTML and shown only
// when this script runs, so a browser without JavaScript never shows a button that does
// nothing (the page says to use the browser's print command instead).
for (const button of document.querySelectorAll('[data-app-print]')) {
  button.hidden = false
  button.addEventListener('click', () => window.print())
}
