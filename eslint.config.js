// Lint: typescript-eslint with type-aware rules. Type-aware because the mistakes that matter here
// are about promises and types (a floating audit write, an async function where a callback is
// expected, an `any` leaking out of a library into a policy decision), which syntax-only rules
// cannot see. Formatting is Prettier's job (.prettierrc.json), not the linter's.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tmp/**', 'coverage/**', 'examples/browser-upload/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `_`-prefixed parameters are deliberately unused (fixed signatures: hooks, callbacks).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Control characters in patterns are the point: key and log-line validation refuse them.
      'no-control-regex': 'off',
      // Fastify plugins and our async interfaces (AuditSink, CredentialIssuer fakes) are async by
      // contract whether or not a given implementation awaits: the rule flags the contract.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read untyped JSON (HTTP bodies, audit lines) and assert on it: that is what they
    // check, so the no-unsafe-* family, which flags every such access, is off there.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain JavaScript (scripts, stubs, configs): no type information to check against.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { ...globals.node }, parserOptions: { projectService: false, project: null } },
  },
  {
    files: ['examples/browser-upload/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
