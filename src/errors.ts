/** An error caused by the user's input (file, option, data): the CLI prints its message alone and exits non-zero. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
