import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all modules of mmdet and damoyolo_mm into the registries.

    Our modules register themselves into mmdet's registries (scope ``mmdet``),
    so after this call any mmdet config can use them by type name.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``mmdet`` (as :func:`mmdet.utils.register_all_modules` does).
    """
    from mmdet.utils import register_all_modules as mmdet_register_all_modules
    mmdet_register_all_modules(init_default_scope=False)
    import damoyolo_mm  # noqa: F401  (the import registers everything)

    if not init_default_scope:
        return
    never_created = (DefaultScope.get_current_instance() is None
                     or not DefaultScope.check_instance_created('mmdet'))
    if never_created:
        DefaultScope.get_instance('mmdet', scope_name='mmdet')
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope.scope_name != 'mmdet':
        warnings.warn('The current default scope '
                      f'"{current_scope.scope_name}" is not "mmdet", '
                      '`register_all_modules` will force the current '
                      'default scope to be "mmdet". If this is not '
                      'expected, please set `init_default_scope=False`.')
        new_instance_name = f'mmdet-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='mmdet')
