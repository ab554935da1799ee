// The contact person, remembered in this browser only when the user asks for it (issue 10,
// point 8). Every page opened from file:// shares one localStorage in Chromium, so any HTML
// file on this PC could read what is stored here: nothing is stored without the checkbox,
// nothing before a run has succeeded, and «Glem» removes it.

const CONTACT_STORE = 'ipis-krypt-kontaktperson';
const CONTACT_FIELDS = ['email', 'name', 'mobile'];

const contactMemory = {
  // The stored contact, or null (also when storage is blocked by policy).
  read() {
    try {
      const stored = JSON.parse(localStorage.getItem(CONTACT_STORE) || 'null');
      if (!stored || typeof stored !== 'object') return null;
      const contact = {};
      for (const field of CONTACT_FIELDS) {
        contact[field] = typeof stored[field] === 'string' ? stored[field] : '';
      }
      return contact;
    } catch (error) {
      console.warn('Kontaktpersonen kunne ikke hentes', error);
      return null;
    }
  },

  // True when the contact was stored.
  remember(contact) {
    try {
      const kept = {};
      for (const field of CONTACT_FIELDS) kept[field] = contact[field];
      localStorage.setItem(CONTACT_STORE, JSON.stringify(kept));
      return true;
    } catch (error) {
      console.warn('Kontaktpersonen kunne ikke huskes', error);
      return false;
    }
  },

  forget() {
    try {
      localStorage.removeItem(CONTACT_STORE);
    } catch (error) {
      console.warn('Kontaktpersonen kunne ikke glemmes', error);
    }
  },
};
