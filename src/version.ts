// The version of this companyctl (shown by --version and recorded by workers in the store).
export const VERSION = '0.1.0';
