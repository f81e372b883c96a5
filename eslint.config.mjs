import nx from '@nx/eslint-plugin';

/**
 * Module boundaries, by project tag:
 *   scope:package  packages/*       → packages only (never services, plugins or tools)
 *   scope:service  services/*       → packages only (so no service imports another service)
 *   scope:plugin   cni-plugin, device-plugin → packages only
 *   scope:tool     tools/*          → anything (the CLI and local node drive the whole system)
 */
export const depConstraints = [
  { sourceTag: 'scope:package', onlyDependOnLibsWithTags: ['scope:package'] },
  { sourceTag: 'scope:service', onlyDependOnLibsWithTags: ['scope:package'] },
  { sourceTag: 'scope:plugin', onlyDependOnLibsWithTags: ['scope:package'] },
  {
    sourceTag: 'scope:tool',
    onlyDependOnLibsWithTags: ['scope:package', 'scope:service', 'scope:plugin', 'scope:tool'],
  },
];

export default [
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/build/**',
      '**/generated/**',
      '**/.nx/**',
      '.reports/**',
      'charts/**',
    ],
  },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  ...nx.configs['flat/javascript'],
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts', '**/*.js', '**/*.mjs', '**/*.cjs'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allowCircularSelfDependency: false,
          banTransitiveDependencies: false,
          depConstraints,
        },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tool configs import the workspace's shared settings by relative path on purpose.
    files: ['**/vitest.config.mts', '**/vitest.config.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  {
    // Tests may use non-null assertions on values they just checked.
    files: ['**/*.test.ts', '**/test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
];
