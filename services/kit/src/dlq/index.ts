export * from './dead-letter.js';
export * from './advisory-copier.js';
export * from './replay.js';
