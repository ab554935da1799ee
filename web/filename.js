// The name of the encrypted file, made safe before the page hands it to the browser, so the
// name the page shows is the name the file gets (issue 10, point 1). Windows is where the
// municipalities' PCs run: its forbidden characters, reserved device names and the trailing
// dots and spaces it drops are all dealt with here; the browser then has nothing to change.

const FORBIDDEN_IN_NAME = /[<>:"/\\|?*\u0000-\u001f\u007f]/g;
// CON, PRN, AUX, NUL, COM0-9 and LPT0-9 (also with superscript digits), whatever follows a dot.
const RESERVED_NAME = /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])(\.|$)/i;
const MAX_NAME_LENGTH = 200;

// '' when nothing usable is left (the form then says «Kryptert IPLOS fil mangler»).
function safeFileName(typed) {
  let name = String(typed).split(/[\\/]/).pop(); // a path typed in full: its last part
  name = name.replace(FORBIDDEN_IN_NAME, '_');
  name = name.replace(/^[\s.]+|[\s.]+$/g, ''); // Windows drops trailing ones; leading ones hide
  if (!name) return '';
  if (!/\.xml$/i.test(name)) name += '.xml';
  if (RESERVED_NAME.test(name)) name = `_${name}`;
  if (name.length > MAX_NAME_LENGTH) name = `${name.slice(0, MAX_NAME_LENGTH - 4).trimEnd()}.xml`;
  return name;
}
