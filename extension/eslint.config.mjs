// ESLint for the Lab extension: typescript-eslint's recommended rules with type information, React's,
// and prettier's config last (formatting is prettier's alone: `jlpm lint:check` runs both).
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import react from 'eslint-plugin-react';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'build-test/', 'node_modules/', 'src/api.gen.ts', '*.mjs', '*.js'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  react.configs.flat.recommended,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json', './tsconfig.test.json'], tsconfigRootDir: import.meta.dirname }
    },
    settings: { react: { version: '18' } },
    rules: {
      // a promise whose result nobody needs is marked `void` where it is started
      '@typescript-eslint/no-floating-promises': 'error',
      eqeqeq: ['error', 'smart'],
      curly: ['error', 'all']
    }
  },
  {
    // node:test registers each test() when it is called and awaits its promise itself
    files: ['src/__tests__/**'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' }
  },
  prettier
);
